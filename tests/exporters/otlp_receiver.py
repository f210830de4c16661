"""Real OTLP receivers on loopback: a gRPC server built from opentelemetry-proto's collector
service definitions, and an HTTP server decoding OTLP/HTTP protobuf bodies.

Both record what arrives as ``(resource attributes, scope name, item)`` triples and can be
stopped and restarted on the same port (to play a collector going down mid-stream), or told to
answer the next requests with given statuses (to play a collector refusing or throttling).
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as logs_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def value_of(any_value: AnyValue) -> Any:
    """An OTLP AnyValue as a Python value."""
    which = any_value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [value_of(v) for v in any_value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in any_value.kvlist_value.values}
    return getattr(any_value, which)


def attributes_of(item: Any) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in item.attributes}


@dataclass
class Received:
    """Everything a receiver was sent, flattened."""

    logs: list[tuple[dict[str, Any], str, Any]] = field(default_factory=list)
    spans: list[tuple[dict[str, Any], str, Any]] = field(default_factory=list)
    metrics: list[tuple[dict[str, Any], str, Any]] = field(default_factory=list)
    requests: int = 0
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, request: Any, headers: dict[str, str]) -> None:
        with self.lock:
            self.requests += 1
            self.headers.append(headers)
            for resource_logs in getattr(request, "resource_logs", ()):
                resource = attributes_of(resource_logs.resource)
                for scope in resource_logs.scope_logs:
                    self.logs += [(resource, scope.scope.name, r) for r in scope.log_records]
            for resource_spans in getattr(request, "resource_spans", ()):
                resource = attributes_of(resource_spans.resource)
                for scope in resource_spans.scope_spans:
                    self.spans += [(resource, scope.scope.name, s) for s in scope.spans]
            for resource_metrics in getattr(request, "resource_metrics", ()):
                resource = attributes_of(resource_metrics.resource)
                for scope in resource_metrics.scope_metrics:
                    self.metrics += [(resource, scope.scope.name, m) for m in scope.metrics]

    def log_records(self) -> list[Any]:
        with self.lock:
            return [record for _, _, record in self.logs]

    def wait_for(self, predicate: Callable[[Received], bool], timeout_s: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if predicate(self):
                    return True
            time.sleep(0.02)
        with self.lock:
            return predicate(self)


class Receiver:
    """Common control: scripted answers, stop and restart on the same port."""

    protocol = ""

    def __init__(self) -> None:
        self.received = Received()
        self.port = 0
        #: Answers for the next requests (an HTTP status, or a gRPC StatusCode); then success.
        self.script: list[Any] = []
        self.delay_s = 0.0
        self._script_lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def next_answer(self) -> Any:
        with self._script_lock:
            return self.script.pop(0) if self.script else None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class GrpcReceiver(Receiver):
    protocol = "grpc"

    def start(self) -> None:
        receiver = self

        def handler(response_type: Any) -> Any:
            def export(request: Any, context: grpc.ServicerContext) -> Any:
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                answer = receiver.next_answer()
                if isinstance(answer, tuple):  # (code, seconds): with a google.rpc.RetryInfo
                    answer, seconds = answer
                    info = RetryInfo()
                    info.retry_delay.FromNanoseconds(int(seconds * 1e9))
                    context.set_trailing_metadata(
                        (("google.rpc.retryinfo-bin", info.SerializeToString()),)
                    )
                if answer is not None:
                    context.abort(answer, "scripted failure")
                receiver.received.add(request, dict(context.invocation_metadata()))
                return response_type()

            return export

        class Logs(logs_grpc.LogsServiceServicer):
            Export = staticmethod(handler(logs_pb.ExportLogsServiceResponse))

        class Traces(trace_grpc.TraceServiceServicer):
            Export = staticmethod(handler(trace_pb.ExportTraceServiceResponse))

        class Metrics(metrics_grpc.MetricsServiceServicer):
            Export = staticmethod(handler(metrics_pb.ExportMetricsServiceResponse))

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        logs_grpc.add_LogsServiceServicer_to_server(Logs(), server)
        trace_grpc.add_TraceServiceServicer_to_server(Traces(), server)
        metrics_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        server.start()
        self._server = server

    def stop(self) -> None:
        self._server.stop(grace=None).wait()


_REQUESTS = {
    "/v1/logs": (logs_pb.ExportLogsServiceRequest, logs_pb.ExportLogsServiceResponse),
    "/v1/traces": (trace_pb.ExportTraceServiceRequest, trace_pb.ExportTraceServiceResponse),
    "/v1/metrics": (
        metrics_pb.ExportMetricsServiceRequest,
        metrics_pb.ExportMetricsServiceResponse,
    ),
}


class HttpReceiver(Receiver):
    protocol = "http/protobuf"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                types = _REQUESTS.get(self.path)
                answer = receiver.next_answer()
                if types is None or answer is not None:
                    status, headers = answer if isinstance(answer, tuple) else (answer, {})
                    self.send_response(status or 404)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request_type, response_type = types
                receiver.received.add(request_type.FromString(body), dict(self.headers))
                payload = response_type().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        ThreadingHTTPServer.allow_reuse_address = True
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def make_receiver(protocol: str) -> Receiver:
    return GrpcReceiver() if protocol == "grpc" else HttpReceiver()
