"""Per-call cost of obskit's logger and instrumentation, beside the peers, in one run.

Run: ``python benchmarks/bench_logging.py`` (peers from the ``bench`` extra: loguru).

* emitted JSON log call: obskit (JsonLinesExporter), structlog's own JSON pipeline
  (contextvars, level, ISO timestamp, JSONRenderer, WriteLogger), stdlib logging with a JSON
  formatter, loguru ``serialize=True``; all writing to a file. obskit is measured twice: the
  cost on the calling thread, and end to end (calls plus the flush that writes every line).
* filtered call (below the level) against a bare Python function call.
* ``@obskit.instrument`` (outside a trace, no tracing exporter) against a bare ``wrapt``
  decorator and a bare call.

Import times are in ``bench_import.py``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import structlog
import wrapt
from _harness import per_call_ns, print_table

import obskit
from obskit.exporters import JsonLinesExporter

N = 20_000


def obskit_emitted(directory: Path, *, fast_json: bool) -> tuple[float, float]:
    """Best per-call cost on the calling thread, and end to end (calls + flush)."""
    from obskit.exporters import _render

    _render._encode = _render._orjson_encode if fast_json else _render._stdlib_encode
    obskit.init(
        service="bench",
        exporters=[JsonLinesExporter(directory / "obskit.jsonl")],
        max_queue_size=N * 2,  # a burst of N fits: this measures cost, not drop policy
    )
    log = obskit.get_logger("bench")
    obskit.bind(request_id="r-1")
    best_caller = best_total = float("inf")
    for _ in range(5):
        obskit.flush(60)
        start = time.perf_counter_ns()
        for _ in range(N):
            log.info("user logged in", user_id=42, plan="pro")
        calls_done = time.perf_counter_ns()
        obskit.flush(60)
        best_caller = min(best_caller, (calls_done - start) / N)
        best_total = min(best_total, (time.perf_counter_ns() - start) / N)
    stats = obskit.pipeline_stats()["exporters"]["JsonLinesExporter"]
    assert stats["dropped"] == 0 and stats["failed"] == 0, stats
    obskit.unbind("request_id")
    obskit.shutdown()
    _render._encode = _render._orjson_encode if _render.orjson else _render._stdlib_encode
    return best_caller, best_total


def structlog_emitted(directory: Path, *, fast_json: bool) -> float:
    if fast_json:  # structlog's documented fast set-up: orjson, bytes out
        import orjson

        handle: Any = open(directory / "structlog.jsonl", "wb")  # noqa: SIM115
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        factory: Any = structlog.BytesLoggerFactory(file=handle)
    else:
        handle = open(directory / "structlog.jsonl", "w")  # noqa: SIM115
        renderer = structlog.processors.JSONRenderer()
        factory = structlog.WriteLoggerFactory(file=handle)
    structlog.reset_defaults()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(request_id="r-1")
    log = structlog.get_logger("bench")
    cost = per_call_ns(lambda: log.info("user logged in", user_id=42, plan="pro"), number=N)
    structlog.contextvars.clear_contextvars()
    handle.close()
    return cost


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "timestamp": self.formatTime(record),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "logger": record.name,
            **getattr(record, "fields", {}),
        }
        return json.dumps(payload)


def stdlib_emitted(directory: Path) -> tuple[float, float]:
    logger = logging.getLogger("bench.stdlib")
    logger.propagate = False
    handler = logging.FileHandler(directory / "stdlib.jsonl")
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    extra = {"fields": {"user_id": 42, "plan": "pro", "request_id": "r-1"}}
    emitted = per_call_ns(lambda: logger.info("user logged in", extra=extra), number=N)
    filtered = per_call_ns(lambda: logger.debug("user logged in", extra=extra), number=N * 10)
    handler.close()
    return emitted, filtered


def loguru_emitted(directory: Path) -> float | None:
    try:
        from loguru import logger
    except ImportError:
        return None
    logger.remove()
    logger.add(directory / "loguru.jsonl", serialize=True, level="INFO")
    bound = logger.bind(request_id="r-1")
    cost = per_call_ns(lambda: bound.info("user logged in", user_id=42, plan="pro"), number=N)
    logger.remove()
    return cost


def filtered_calls() -> dict[str, float]:
    obskit.init(service="bench", level="info", exporters=["memory"])
    log = obskit.get_logger("bench")
    slog = structlog.wrap_logger(
        None, wrapper_class=structlog.make_filtering_bound_logger(logging.INFO)
    )

    def bare(event: str, **fields: object) -> None:
        return None

    out = {
        "bare function call": per_call_ns(lambda: bare("x", n=1), number=N * 10),
        "obskit log.debug (filtered)": per_call_ns(lambda: log.debug("x", n=1), number=N * 10),
        "structlog debug (filtered)": per_call_ns(lambda: slog.debug("x", n=1), number=N * 10),
    }
    obskit.shutdown()
    return out


def instrument_calls() -> dict[str, float]:
    obskit.init(service="bench", exporters=["memory"])

    def plain(x: int) -> int:
        return x + 1

    @wrapt.decorator
    def passthrough(wrapped, instance, args, kwargs):  # type: ignore[no-untyped-def]
        return wrapped(*args, **kwargs)

    wrapped = passthrough(plain)
    instrumented = obskit.instrument(plain)
    out = {
        "bare call": per_call_ns(lambda: plain(1), number=N * 5),
        "bare wrapt decorator": per_call_ns(lambda: wrapped(1), number=N * 5),
        "@obskit.instrument": per_call_ns(lambda: instrumented(1), number=N * 5),
    }
    obskit.shutdown()
    return out


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        structlog_ns = structlog_emitted(directory, fast_json=False)
        obskit_caller, obskit_total = obskit_emitted(directory, fast_json=False)
        stdlib_ns, stdlib_filtered = stdlib_emitted(directory)
        loguru_ns = loguru_emitted(directory)
        fast = _has("orjson")
        if fast:
            structlog_fast = structlog_emitted(directory, fast_json=True)
            obskit_fast_caller, obskit_fast_total = obskit_emitted(directory, fast_json=True)
    rows = [
        ("structlog JSON pipeline (json)", structlog_ns / 1000, 1.0),
        ("obskit, calling thread (json)", obskit_caller / 1000, obskit_caller / structlog_ns),
        ("obskit, end to end incl. flush (json)", obskit_total / 1000, obskit_total / structlog_ns),
        ("stdlib logging + JSON formatter", stdlib_ns / 1000, stdlib_ns / structlog_ns),
    ]
    if loguru_ns is not None:
        rows.append(("loguru serialize=True", loguru_ns / 1000, loguru_ns / structlog_ns))
    if fast:
        rows += [
            (
                "structlog JSON pipeline (orjson)",
                structlog_fast / 1000,
                structlog_fast / structlog_ns,
            ),
            (
                "obskit[fast], calling thread (orjson)",
                obskit_fast_caller / 1000,
                obskit_fast_caller / structlog_ns,
            ),
            (
                "obskit[fast], end to end (orjson)",
                obskit_fast_total / 1000,
                obskit_fast_total / structlog_ns,
            ),
        ]
    print_table(
        "Emitted JSON log call to a file", ["logger", "µs/call", "x structlog (json)"], rows
    )

    filtered = filtered_calls()
    filtered["stdlib logger.debug (filtered)"] = stdlib_filtered
    bare = filtered["bare function call"]
    print_table(
        "Filtered call (below the level)",
        ["call", "ns/call", "x bare call"],
        [(name, ns, ns / bare) for name, ns in filtered.items()],
    )

    calls = instrument_calls()
    wrapt_ns = calls["bare wrapt decorator"]
    print_table(
        "@instrument outside a trace (no tracing exporter)",
        ["call", "ns/call", "x bare wrapt"],
        [(name, ns, ns / wrapt_ns) for name, ns in calls.items()],
    )

    print("\n(import times: benchmarks/bench_import.py)")
    print(f"\n(python {sys.version.split()[0]}, {os.cpu_count()} cpus, N={N})")


if __name__ == "__main__":
    main()
