"""Per-request overhead of ASGI middleware on a minimal app, obskit beside the peers, one run.

Run: ``python benchmarks/bench_integrations.py`` (peers from the ``bench`` extra:
opentelemetry-instrumentation-asgi and sentry-sdk). ``--requests N`` per round,
``--rounds R``.

The driver calls each ASGI app in process, in one event loop, with a fresh copy of a
uvicorn-like scope per request (no sockets: HTTP parsing and the network would add the same
cost to every variant and bury the difference on a shared machine). The app answers
``200 ok`` in two messages. Variants, measured in interleaved rounds (best round counts):

* bare app;
* ``ObskitASGIMiddleware``: request scope, server span, request id header, breadcrumb scope;
  spans go through obskit's pipeline to an exporter that drops them;
* the same with obskit's alert engine listening to the request metrics;
* OpenTelemetry's ``OpenTelemetryMiddleware`` with its own SDK ``TracerProvider``, a
  ``BatchSpanProcessor`` and an exporter that drops spans (its metrics go to the no-op meter);
* sentry-sdk's ``SentryAsgiMiddleware`` with ``traces_sample_rate=1.0`` and a transport that
  drops envelopes (no default integrations).

Every tracer samples every request. "overhead" is the variant minus the bare app.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import print_table

import obskit
from obskit.exporting import ExportResult
from obskit.integrations import ObskitASGIMiddleware

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "server": ("127.0.0.1", 8000),
    "client": ("127.0.0.1", 50000),
    "scheme": "http",
    "method": "GET",
    "root_path": "",
    "path": "/users/42",
    "raw_path": b"/users/42",
    "query_string": b"",
    "headers": [
        (b"host", b"127.0.0.1:8000"),
        (b"user-agent", b"bench/1.0"),
        (b"accept", b"*/*"),
    ],
}
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain")],
}
BODY = {"type": "http.response.body", "body": b"ok"}
REQUEST = {"type": "http.request", "body": b"", "more_body": False}


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(START)
    await send(BODY)


async def receive() -> dict[str, Any]:
    return REQUEST


async def send(message: Any) -> None:
    return None


class DropExporter:
    """An obskit exporter that accepts and drops every batch."""

    def export(self, batch: Sequence[Any]) -> ExportResult:
        return ExportResult.SUCCESS

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        return True

    def shutdown(self, timeout_s: float = 5.0) -> None:
        return None


def obskit_app() -> App:
    obskit.init(
        service="bench", exporters=[DropExporter()], install_hooks=False, max_queue_size=200_000
    )
    return ObskitASGIMiddleware(bare)


def otel_app() -> tuple[App, Callable[[], None]]:
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=200_000))
    app = OpenTelemetryMiddleware(bare, tracer_provider=provider)
    return app, lambda: provider.force_flush()


def sentry_app() -> App:
    import sentry_sdk
    from sentry_sdk.integrations.asgi import SentryAsgiMiddleware
    from sentry_sdk.transport import Transport

    class Drop(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            return None

    logging.getLogger("sentry_sdk").setLevel(logging.ERROR)
    sentry_sdk.init(
        transport=Drop,
        traces_sample_rate=1.0,
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    return SentryAsgiMiddleware(bare)  # type: ignore[no-any-return]


async def per_request_us(app: App, requests: int) -> float:
    scope = SCOPE
    gc.collect()
    start = time.perf_counter()
    for _ in range(requests):
        await app(dict(scope), receive, send)
    return (time.perf_counter() - start) / requests * 1e6


async def measure(
    variants: dict[str, tuple[App, Callable[[], None]]], requests: int, rounds: int
) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in variants}
    for app, settle in variants.values():  # warm up (imports, caches, first spans)
        await per_request_us(app, requests // 10 + 1)
        settle()
    for _ in range(rounds):
        for name, (app, settle) in variants.items():
            results[name].append(await per_request_us(app, requests))
            settle()  # background export happens between rounds, not while timing
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    def flush_obskit() -> None:
        obskit.flush(60)

    otel, flush_otel = otel_app()
    sentry = sentry_app()
    variants: dict[str, tuple[App, Callable[[], None]]] = {
        "bare ASGI app": (bare, lambda: None),
        "obskit ObskitASGIMiddleware": (obskit_app(), flush_obskit),
    }
    variants["OpenTelemetry OpenTelemetryMiddleware"] = (otel, flush_otel)
    variants["sentry-sdk SentryAsgiMiddleware"] = (sentry, lambda: None)
    results = asyncio.run(measure(variants, args.requests, args.rounds))

    obskit.alerts.configure(evaluation_interval_s=None)  # request metrics now feed the engine
    with_alerts = asyncio.run(
        measure(
            {"obskit + alert engine": (ObskitASGIMiddleware(bare), flush_obskit)},
            args.requests,
            args.rounds,
        )
    )
    results.update(with_alerts)
    stats = obskit.pipeline_stats()["exporters"]["DropExporter"]
    obskit.alerts.reset()
    obskit.shutdown()

    base = min(results["bare ASGI app"])
    obskit_overhead = min(results["obskit ObskitASGIMiddleware"]) - base
    rows = []
    for name, samples in results.items():
        best = min(samples)
        overhead = best - base
        ratio = "" if name == "bare ASGI app" else f"{overhead / obskit_overhead:.2f}x"
        rows.append([name, best, statistics.median(samples), overhead, ratio])
    print_table(
        f"ASGI middleware overhead per request ({args.requests} requests x {args.rounds} rounds, "
        f"best round; Python {sys.version.split()[0]})",
        ["variant", "best us/req", "median us/req", "overhead us", "overhead vs obskit"],
        rows,
    )
    print(f"\nobskit pipeline: {stats['accepted']} spans accepted, {stats['dropped']} dropped")


if __name__ == "__main__":
    main()
