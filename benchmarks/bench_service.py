"""What obskit costs a real service: server CPU per request under uvicorn, beside the peers.

Run: ``python benchmarks/bench_service.py`` (peers from the ``bench`` extra:
opentelemetry-instrumentation-asgi and sentry-sdk). ``--requests N`` per round and variant,
``--rounds R``, ``--connections C`` (keep-alive connections of the CPU phase),
``--keepalive-clients K`` and ``--keepalive-requests M`` (the drop phase; 0 clients skips it).

Each variant is the same Starlette service (``GET /items/{item_id}``: one log line, a small
JSON response) in its own uvicorn server process on loopback:

* ``bare``: the log line through stdlib ``logging`` to a file;
* ``opentelemetry``: OpenTelemetry's ``OpenTelemetryMiddleware`` with the SDK
  (``TracerProvider``, ``BatchSpanProcessor``, spans written as JSON to a file) and the same
  stdlib log line;
* ``sentry``: ``sentry_sdk.init(traces_sample_rate=1.0)`` with its default integrations
  (Starlette's included) and a transport that drops envelopes, and the stdlib log line;
* ``obskit``: ``ObskitASGIMiddleware``, the log line through obskit's logger, and obskit's
  JSON lines and SQLite exporters (spans and logs written by their worker threads).

**Server CPU per request** is read from the server process itself: ``GET /__cpu`` returns
``time.process_time()`` (every thread of the process: the exporters' workers included). The
driver reads it before and after ``N`` requests sent over ``C`` keep-alive connections, and
goes round the variants in a rotating order ``R`` times; each variant's figure is its median
round. "added" is the variant minus ``bare``; the last line is obskit's added CPU as a share of
OpenTelemetry's.

The CPU figures also come paired: each round's ``added`` is the variant minus ``bare`` *of the
same round* (the servers are measured one after another, so a change in the machine's load
moves both), and the share line gives the median of the per-round shares with their range.

**Dropped requests**: ``K`` clients each open a keep-alive connection at once and send ``M``
requests over it (1,000 x 12 by default). A request whose connection is refused, reset, closed
or silent for 30 s before its response counts as dropped; the client then reconnects for the
rest, as HTTP clients do (and after a response saying ``Connection: close``). With
``--flaky-every N`` every N-th request of a client goes to ``GET /flaky/{n}``, whose handler
raises: the table then also counts the 500 responses and the connections the server closed
after a 500 that did not say ``Connection: close`` (Starlette answers 500 and re-raises, as
ASGI servers expect, and uvicorn then closes the connection: a client that reuses it at once
loses its next request, with or without any instrumentation). ``--obskit-outer`` wraps the
Starlette app in obskit's middleware (``app = ObskitASGIMiddleware(app)``) instead of
``add_middleware``: obskit then sees the exception after Starlette sent its 500. Every server
is stopped at the end (and after ``--timeout-s`` at the latest).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = ("bare", "opentelemetry", "sentry", "obskit")


# -- the service (in the server process) -------------------------------------------------------


def build_app(variant: str, workdir: Path, obskit_outer: bool = False) -> Any:
    """The Starlette service with ``variant``'s instrumentation."""
    import logging

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    if variant == "obskit":
        import obskit
        from obskit.integrations import ObskitASGIMiddleware

        obskit.init(
            service="bench",
            exporters=["jsonl", "sqlite"],
            exporter_options={
                "jsonl": {"path": str(workdir / "obskit.jsonl")},
                "sqlite": {"path": str(workdir / "obskit.db")},
            },
            install_hooks=False,
        )
        log: Any = obskit.get_logger("svc")

        def log_line(item_id: int) -> None:
            log.info("item served", item_id=item_id)

    else:
        handler = logging.FileHandler(workdir / f"{variant}.log")
        handler.setFormatter(
            logging.Formatter('{"time":"%(asctime)s","level":"%(levelname)s","msg":"%(message)s"}')
        )
        stdlib = logging.getLogger("svc")
        stdlib.addHandler(handler)
        stdlib.setLevel(logging.INFO)
        stdlib.propagate = False

        def log_line(item_id: int) -> None:
            stdlib.info("item served item_id=%s", item_id)

    if variant == "sentry":
        import sentry_sdk

        sentry_sdk.init(
            dsn="http://key@127.0.0.1:9/1",
            traces_sample_rate=1.0,
            transport=lambda envelope: None,
        )

    async def item(request: Request) -> JSONResponse:
        item_id = request.path_params["item_id"]
        log_line(item_id)
        return JSONResponse({"id": item_id, "name": "pen", "price": 1.5})

    async def flaky(request: Request) -> JSONResponse:
        log_line(request.path_params["n"])
        raise RuntimeError("flaky dependency failed")

    async def cpu(request: Request) -> PlainTextResponse:
        return PlainTextResponse(repr(time.process_time()))

    app: Any = Starlette(
        routes=[
            Route("/items/{item_id:int}", item),
            Route("/flaky/{n:int}", flaky),
            Route("/__cpu", cpu),
        ]
    )
    if variant == "obskit" and not obskit_outer:
        app.add_middleware(ObskitASGIMiddleware)
    if variant == "obskit" and obskit_outer:
        app = ObskitASGIMiddleware(app)
    if variant == "opentelemetry":
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

        spans = (workdir / "otel-spans.jsonl").open("w")
        provider = TracerProvider()
        provider.add_span_processor(
            BatchSpanProcessor(
                ConsoleSpanExporter(
                    out=spans, formatter=lambda span: span.to_json(indent=None) + "\n"
                )
            )
        )
        app = OpenTelemetryMiddleware(app, tracer_provider=provider)
    return app


def serve(
    variant: str, workdir: Path, timeout_s: float, keep_alive_s: float, obskit_outer: bool
) -> None:
    """Run ``variant``'s service on a free loopback port; print the port; stop on SIGTERM."""
    import uvicorn

    app = build_app(variant, workdir, obskit_outer)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        log_level="error",
        access_log=False,
        lifespan="off",
        backlog=2048,
        timeout_keep_alive=keep_alive_s,
    )
    server = uvicorn.Server(config)
    signal.signal(signal.SIGALRM, lambda *_: setattr(server, "should_exit", True))
    signal.alarm(int(timeout_s))  # stops by itself whatever happens to the driver
    print(sock.getsockname()[1], flush=True)
    server.run(sockets=[sock])
    if variant == "obskit":
        import obskit

        obskit.shutdown()


# -- the driver --------------------------------------------------------------------------------


class _Response:
    __slots__ = ("body", "close", "status")

    def __init__(self, status: int, close: bool, body: bytes) -> None:
        self.status, self.close, self.body = status, close, body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
) -> _Response:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    close = False
    for line in head.split(b"\r\n"):
        lower = line.lower()
        if lower.startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
        elif lower.startswith(b"connection:") and b"close" in lower:
            close = True
    return _Response(int(head.split(None, 2)[1]), close, await reader.readexactly(length))


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> bytes:
    return (await _exchange(reader, writer, path)).body


async def _cpu(port: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return float(await _request(reader, writer, "/__cpu"))
    finally:
        writer.close()


async def _load(port: int, requests: int, connections: int) -> int:
    """Send ``requests`` over ``connections`` keep-alive connections; the number that failed."""
    per = requests // connections
    failed = 0

    async def one(index: int) -> None:
        nonlocal failed
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            failed += per
            return
        done = 0
        try:
            for n in range(per):
                await _request(reader, writer, f"/items/{index * per + n}")
                done += 1
        except (OSError, asyncio.IncompleteReadError):
            failed += per - done
        finally:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(connections)))
    return failed


async def cpu_per_request_us(port: int, requests: int, connections: int) -> float:
    before = await _cpu(port)
    await _load(port, requests, connections)
    after = await _cpu(port)
    return (after - before) / requests * 1e6


async def dropped(port: int, clients: int, per_client: int, flaky_every: int) -> dict[str, int]:
    """Requests dropped when ``clients`` keep-alive clients arrive at once (see the module doc)."""
    counts = {"dropped": 0, "500": 0, "closed after a 500": 0}
    failures = (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError)

    async def one(index: int) -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        status = 0
        for n in range(per_client):
            try:
                if writer is not None and reader is not None and status >= 500:
                    await asyncio.sleep(0)  # let a pending end of stream arrive
                    if reader.at_eof():  # closed without saying so: reconnect, as clients do
                        counts["closed after a 500"] += 1
                        writer.close()
                        reader = writer = None
                if writer is None:
                    connect = asyncio.open_connection("127.0.0.1", port)
                    reader, writer = await asyncio.wait_for(connect, 30)
                flaky = flaky_every and n % flaky_every == flaky_every - 1
                path = f"/flaky/{n}" if flaky else f"/items/{n}"
                assert reader is not None
                response = await asyncio.wait_for(_exchange(reader, writer, path), 30)
            except failures:
                counts["dropped"] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                status = 0
                continue
            status = response.status
            if status >= 500:
                counts["500"] += 1
            if response.close:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(clients)))
    return counts


def start(
    variant: str,
    workdir: Path,
    timeout_s: float,
    keep_alive_s: float = 5.0,
    obskit_outer: bool = False,
) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            variant,
            "--workdir",
            str(workdir),
            "--timeout-s",
            str(timeout_s),
            "--keep-alive-s",
            str(keep_alive_s),
            *(["--obskit-outer"] if obskit_outer else []),
        ],
        stdout=subprocess.PIPE,
        # uvicorn logs each exception of the failing route with its traceback: kept apart
        stderr=(workdir / f"{variant}.stderr").open("w"),
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        raise SystemExit(f"the {variant} server did not start")
    return process, int(line)


def drive(args: argparse.Namespace) -> None:
    from _harness import print_table

    workdir = Path(tempfile.mkdtemp(prefix="obskit-bench-service-"))
    servers = {
        v: start(v, workdir, args.timeout_s, args.keep_alive_s, args.obskit_outer) for v in VARIANTS
    }
    try:
        ports = {v: port for v, (_, port) in servers.items()}
        asyncio.run(_warm(ports, args))
        rounds: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for index in range(args.rounds):
            order = VARIANTS[index % len(VARIANTS) :] + VARIANTS[: index % len(VARIANTS)]
            for variant in order:
                rounds[variant].append(
                    asyncio.run(cpu_per_request_us(ports[variant], args.requests, args.connections))
                )
        median = {v: statistics.median(r) for v, r in rounds.items()}
        bare = median["bare"]
        rows = [[v, median[v], median[v] - bare, min(rounds[v]), max(rounds[v])] for v in VARIANTS]
        print_table(
            f"server CPU per request, uvicorn + Starlette, {args.requests} requests x "
            f"{args.rounds} rounds over {args.connections} keep-alive connections",
            ["variant", "CPU us/request (median)", "added us", "min", "max"],
            rows,
        )
        otel_added = median["opentelemetry"] - bare
        obskit_added = median["obskit"] - bare
        share = obskit_added / otel_added if otel_added > 0 else float("nan")
        print(
            f"\nobskit adds {obskit_added:.0f} us/request, OpenTelemetry {otel_added:.0f}: "
            f"{share:.2f} of OpenTelemetry's (target: at most 0.33)"
        )
        paired = [
            (o - b) / (t - b)
            for o, t, b in zip(
                rounds["obskit"], rounds["opentelemetry"], rounds["bare"], strict=True
            )
            if t > b
        ]
        if paired:
            print(
                f"paired per round (each minus the same round's bare): median share "
                f"{statistics.median(paired):.2f}, range {min(paired):.2f}-{max(paired):.2f}"
            )
        if args.keepalive_clients:
            clients, each = args.keepalive_clients, args.keepalive_requests
            flaky = args.flaky_every
            drops = []
            for v in VARIANTS:
                counts = asyncio.run(dropped(ports[v], clients, each, flaky))
                drops.append([v, counts["dropped"], counts["500"], counts["closed after a 500"]])
            print_table(
                f"dropped requests, {clients} keep-alive clients at once, {each} requests each"
                + (f", every {flaky}th to a failing route" if flaky else ""),
                ["variant", "dropped", "500 responses", "closed after a 500"],
                drops,
            )
    finally:
        for process, _ in servers.values():
            process.send_signal(signal.SIGTERM)
        for process, _ in servers.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


async def _warm(ports: dict[str, int], args: argparse.Namespace) -> None:
    for port in ports.values():
        await _load(port, min(args.requests, 500), min(args.connections, 10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--keepalive-clients", type=int, default=1000)
    parser.add_argument("--keepalive-requests", type=int, default=12)
    parser.add_argument("--timeout-s", type=float, default=900.0)
    parser.add_argument(
        "--keep-alive-s", type=float, default=5.0, help="uvicorn's timeout_keep_alive"
    )
    parser.add_argument(
        "--flaky-every", type=int, default=0, help="every N-th request of a drop-phase client fails"
    )
    parser.add_argument(
        "--obskit-outer", action="store_true", help="wrap the app in obskit's middleware"
    )
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.workdir, args.timeout_s, args.keep_alive_s, args.obskit_outer)
        return
    os.environ.pop("OBSKIT_EXPORTERS", None)
    drive(args)


if __name__ == "__main__":
    main()
