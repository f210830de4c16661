"""End-to-end throughput of obskit's exporters, beside the OpenTelemetry SDK's logging path.

Each path logs the same N structured records (a message and three fields) from the main
thread; the clock stops when the last record has arrived: written to the file or database, or
counted by the OTLP receiver. The receiver (gRPC and HTTP/protobuf, built from
opentelemetry-proto's service definitions) runs in a separate process so it does not compete
with the application for the GIL. The OpenTelemetry path is the SDK's ``LoggingHandler`` on a
stdlib logger, a ``BatchLogRecordProcessor`` (queue large enough for N, batches of 512, 200 ms
delay: the same as obskit's defaults) and the SDK's ``OTLPLogExporter``.

Columns: end-to-end records per second (median of the repeats), the time the application
spent in its log calls per record, and the end-to-end ratio to the SDK's gRPC path.

    python benchmarks/bench_exporters.py [--records 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import print_table

import obskit
from obskit.exporters import JsonLinesExporter, OTLPExporter, SQLiteExporter


def receive(ready: Any, grpc_count: Any, http_count: Any, ports: tuple[int, int] = (0, 0)) -> None:
    """The OTLP receiver process: counts log records arriving over gRPC and HTTP (on ``ports``,
    or on free ones); accepts metrics (obskit's own, at shutdown) without counting them."""
    import grpc
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as pb
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as pb_grpc
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc

    def count(request: Any) -> int:
        return sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs)

    class Logs(pb_grpc.LogsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            with grpc_count.get_lock():
                grpc_count.value += count(request)
            return pb.ExportLogsServiceResponse()

    class Metrics(metrics_grpc.MetricsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            return metrics_pb.ExportMetricsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    metrics_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    grpc_port = server.add_insecure_port(f"127.0.0.1:{ports[0]}")
    server.start()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/logs":
                with http_count.get_lock():
                    http_count.value += count(pb.ExportLogsServiceRequest.FromString(body))
            payload = b""  # an empty Export*ServiceResponse: all accepted
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    http_server = ThreadingHTTPServer(("127.0.0.1", ports[1]), Handler)
    ready.put((grpc_port, http_server.server_address[1]))
    http_server.serve_forever()


def wait_until(counter: Any, target: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while counter.value < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {counter.value} of {target} records arrived")
        time.sleep(0.001)


def run_obskit(exporter: Any, records: int, arrived: Callable[[], None]) -> tuple[float, float]:
    obskit.init(
        exporters=[exporter], max_queue_size=records + 1000, level="info", install_hooks=False
    )
    log = obskit.get_logger("bench")
    start = time.perf_counter()
    for n in range(records):
        log.info("order event", n=n, order_id=f"o-{n}", amount=n * 0.01)
    app = time.perf_counter() - start
    if not obskit.flush(timeout_s=120):
        raise RuntimeError(f"{exporter!r} did not flush")
    arrived()
    total = time.perf_counter() - start
    stats = obskit.pipeline_stats()["exporters"]
    obskit.shutdown()
    (row,) = stats.values()
    if row["dropped"] or row["failed"]:
        raise RuntimeError(f"{exporter!r} lost records: {row}")
    return total, app


def run_otel_sdk(
    protocol: str, port: int, records: int, arrived: Callable[[], None]
) -> tuple[float, float]:
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        exporter = OTLPLogExporter(endpoint=f"http://127.0.0.1:{port}", insecure=True)
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import (
            OTLPLogExporter as HttpLogExporter,
        )

        exporter = HttpLogExporter(endpoint=f"http://127.0.0.1:{port}/v1/logs")
    provider = LoggerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_log_record_processor(
        BatchLogRecordProcessor(
            exporter,
            max_queue_size=records + 1000,
            schedule_delay_millis=200,
            max_export_batch_size=512,
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # LoggingHandler, since SDK 1.40
        handler = LoggingHandler(logger_provider=provider)
    logger = logging.getLogger(f"bench.otel.{protocol}")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    start = time.perf_counter()
    for n in range(records):
        logger.info("order event", extra={"n": n, "order_id": f"o-{n}", "amount": n * 0.01})
    app = time.perf_counter() - start
    provider.force_flush()
    arrived()
    total = time.perf_counter() - start
    provider.shutdown()
    return total, app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    records = args.records

    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    grpc_count, http_count = context.Value("q", 0), context.Value("q", 0)
    receiver = context.Process(target=receive, args=(ready, grpc_count, http_count), daemon=True)
    receiver.start()
    grpc_port, http_port = ready.get(timeout=60)
    workdir = Path(tempfile.mkdtemp(prefix="obskit-bench-"))

    def expect(counter: Any) -> Callable[[], None]:
        target = counter.value + records
        return lambda: wait_until(counter, target)

    def nothing() -> None:
        return None

    paths: list[tuple[str, Callable[[int], tuple[float, float]]]] = [
        ("obskit -> JSONL file", lambda i: run_obskit(
            JsonLinesExporter(workdir / f"bench{i}.jsonl"), records, nothing)),
        ("obskit -> SQLite store", lambda i: run_obskit(
            SQLiteExporter(workdir / f"bench{i}.db"), records, nothing)),
        ("obskit -> OTLP/gRPC", lambda i: run_obskit(
            OTLPExporter(f"http://127.0.0.1:{grpc_port}", protocol="grpc"), records,
            expect(grpc_count))),
        ("obskit -> OTLP/HTTP", lambda i: run_obskit(
            OTLPExporter(f"http://127.0.0.1:{http_port}", protocol="http/protobuf"), records,
            expect(http_count))),
        ("OTel SDK LoggingHandler -> OTLP/gRPC", lambda i: run_otel_sdk(
            "grpc", grpc_port, records, expect(grpc_count))),
        ("OTel SDK LoggingHandler -> OTLP/HTTP", lambda i: run_otel_sdk(
            "http", http_port, records, expect(http_count))),
    ]  # fmt: skip
    results: dict[str, tuple[float, float]] = {}
    for name, run in paths:
        run(-1)  # warm-up: imports, connections, first-call costs
        totals, apps = [], []
        for i in range(args.repeat):
            total, app = run(i)
            totals.append(total)
            apps.append(app)
        results[name] = (records / statistics.median(totals), statistics.median(apps) / records)
    receiver.terminate()

    baseline = results["OTel SDK LoggingHandler -> OTLP/gRPC"][0]
    print_table(
        f"Exporters end to end: {records} records per run, median of {args.repeat} "
        f"(Python {sys.version.split()[0]}, obskit {obskit.__version__})",
        ["path", "records/s", "app us/record", "vs OTel SDK gRPC"],
        [
            [name, rate, per_call * 1e6, f"{rate / baseline:.2f}x"]
            for name, (rate, per_call) in results.items()
        ],
    )


if __name__ == "__main__":
    main()
