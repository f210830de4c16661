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

**Dropped connections**: ``K`` clients each open a keep-alive connection at once and send ``M``
requests over it (1,000 x 12 by default); a connection refused, reset, closed or silent for 30 s
before its last response counts as dropped. Every server is stopped at the end (and after
``--timeout-s`` at the latest).
"""

from __future__ import annotations

import argparse
import asyncio
import os
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


def build_app(variant: str, workdir: Path) -> Any:
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

    async def cpu(request: Request) -> PlainTextResponse:
        return PlainTextResponse(repr(time.process_time()))

    app: Any = Starlette(routes=[Route("/items/{item_id:int}", item), Route("/__cpu", cpu)])
    if variant == "obskit":
        app.add_middleware(ObskitASGIMiddleware)
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


def serve(variant: str, workdir: Path, timeout_s: float, keep_alive_s: float) -> None:
    """Run ``variant``'s service on a free loopback port; print the port; stop on SIGTERM."""
    import uvicorn

    app = build_app(variant, workdir)
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


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> bytes:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return await reader.readexactly(length)


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


async def dropped(port: int, clients: int, per_client: int) -> int:
    """Connections dropped when ``clients`` keep-alive clients arrive at once."""
    lost = 0

    async def one(index: int) -> None:
        nonlocal lost
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
        except (OSError, asyncio.TimeoutError):
            lost += 1
            return
        try:
            for n in range(per_client):
                await asyncio.wait_for(_request(reader, writer, f"/items/{n}"), 30)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            lost += 1
        finally:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(clients)))
    return lost


def start(
    variant: str, workdir: Path, timeout_s: float, keep_alive_s: float = 5.0
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
        ],
        stdout=subprocess.PIPE,
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
    servers = {v: start(v, workdir, args.timeout_s, args.keep_alive_s) for v in VARIANTS}
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
        if args.keepalive_clients:
            clients, each = args.keepalive_clients, args.keepalive_requests
            drops = [[v, asyncio.run(dropped(ports[v], clients, each))] for v in VARIANTS]
            print_table(
                f"dropped connections, {clients} keep-alive clients at once, {each} requests each",
                ["variant", "dropped"],
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
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.workdir, args.timeout_s, args.keep_alive_s)
        return
    os.environ.pop("OBSKIT_EXPORTERS", None)
    drive(args)


if __name__ == "__main__":
    main()
