"""Sending one OTLP request, over gRPC or HTTP/protobuf, and judging the answer.

A transport makes one attempt and says what happened; the exporter's
:class:`~obskit.processor.BatchProcessor` does the retrying (with backoff, keeping the batch),
so there is exactly one retry loop and one queue. The verdicts follow the OTLP specification:

* gRPC: ``CANCELLED``, ``DEADLINE_EXCEEDED``, ``ABORTED``, ``OUT_OF_RANGE``, ``UNAVAILABLE``
  and ``DATA_LOSS`` are retryable, ``RESOURCE_EXHAUSTED`` only with a ``RetryInfo`` delay
  (which is honoured); anything else is permanent.
* HTTP: 429, 502, 503 and 504 are retryable (``Retry-After`` honoured), other statuses are
  permanent; a connection that cannot be made or times out is retryable.
* A partial success (the collector rejected some items) is a success with a warning.
"""

from __future__ import annotations

import gzip
import ssl
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol

from obskit.exporters._http import parse_retry_after, post
from obskit.exporters._otlp_config import Destination
from obskit.exporting import ExportResult

__all__ = ["GrpcTransport", "HttpTransport", "Outcome", "Transport", "make_transport"]

USER_AGENT = "obskit-otlp-exporter/0.1"
_RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
_RETRYABLE_GRPC = frozenset(
    {"CANCELLED", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE", "UNAVAILABLE", "DATA_LOSS"}
)


@dataclass(slots=True)
class Outcome:
    """The verdict on one request."""

    result: ExportResult
    #: Why it failed (or what a partial success rejected), for the one warning.
    problem: str = ""
    #: A short stable name for the problem kind (``UNAVAILABLE``, ``http_503``, ...).
    code: str = ""
    #: How long the server asked us to wait before retrying.
    retry_after_s: float | None = None
    rejected: int = 0


class Transport(Protocol):
    def send(self, request: Any) -> Outcome: ...

    def close(self) -> None: ...


def make_transport(destination: Destination) -> Transport:
    """A transport for ``destination``; ``OSError`` if a certificate file cannot be read."""
    if destination.protocol == "grpc":
        return GrpcTransport(destination)
    return HttpTransport(destination)


def _response_type(signal: str) -> Any:
    if signal == "logs":
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as module

        return module.ExportLogsServiceResponse
    if signal == "traces":
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as module_t

        return module_t.ExportTraceServiceResponse
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as module_m

    return module_m.ExportMetricsServiceResponse


def _partial(response: Any) -> Outcome:
    if not response.HasField("partial_success"):
        return Outcome(ExportResult.SUCCESS)
    partial = response.partial_success
    rejected = next(
        (
            getattr(partial, name)
            for name in ("rejected_log_records", "rejected_spans", "rejected_data_points")
            if hasattr(partial, name)
        ),
        0,
    )
    return Outcome(
        ExportResult.SUCCESS,
        problem=partial.error_message,
        code="partial_success",
        rejected=int(rejected),
    )


class HttpTransport:
    """OTLP/HTTP with binary protobuf bodies (standard library ``urllib``)."""

    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        handlers: list[Any] = []
        if destination.address.startswith("https:"):
            handlers.append(urllib.request.HTTPSHandler(context=_ssl_context(destination)))
        self._opener = urllib.request.build_opener(*handlers)
        self._headers = {
            "Content-Type": "application/x-protobuf",
            "User-Agent": USER_AGENT,
            **destination.headers,
        }
        if destination.compression == "gzip":
            self._headers["Content-Encoding"] = "gzip"
        self._response = _response_type(destination.signal)

    def send(self, request: Any) -> Outcome:
        destination = self.destination
        body = request.SerializeToString()
        if destination.compression == "gzip":
            body = gzip.compress(body, compresslevel=5)
        answer = post(self._opener, destination.address, body, self._headers, destination.timeout_s)
        if answer.status is None:
            return Outcome(
                ExportResult.RETRYABLE,
                problem=f"cannot reach {destination.address}: {answer.reason}",
                code="unreachable",
            )
        if not 200 <= answer.status < 300:
            retryable = answer.status in _RETRYABLE_HTTP
            return Outcome(
                ExportResult.RETRYABLE if retryable else ExportResult.FAILURE,
                problem=f"HTTP {answer.status} {answer.reason}",
                code=f"http_{answer.status}",
                retry_after_s=parse_retry_after(answer.retry_after) if retryable else None,
            )
        try:
            response = self._response.FromString(answer.body) if answer.body else self._response()
        except Exception:
            return Outcome(ExportResult.SUCCESS)  # 2xx with an unreadable body: it was taken
        return _partial(response)

    def close(self) -> None:
        return None


def _ssl_context(destination: Destination) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=destination.certificate)
    if destination.client_certificate:
        context.load_cert_chain(destination.client_certificate, destination.client_key)
    return context


class GrpcTransport:
    """OTLP/gRPC through the collector service stubs of ``opentelemetry-proto``."""

    def __init__(self, destination: Destination) -> None:
        import grpc

        self.destination = destination
        self._grpc = grpc
        # obskit's processor owns the backoff; keep gRPC's own reconnect delay short so a
        # collector that comes back is used at the next retry.
        options = [
            ("grpc.primary_user_agent", USER_AGENT),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        compression = (
            grpc.Compression.Gzip
            if destination.compression == "gzip"
            else grpc.Compression.NoCompression
        )
        if destination.insecure:
            self._channel = grpc.insecure_channel(
                destination.address, options=options, compression=compression
            )
        else:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(destination.certificate),
                private_key=_read(destination.client_key),
                certificate_chain=_read(destination.client_certificate),
            )
            self._channel = grpc.secure_channel(
                destination.address, credentials, options=options, compression=compression
            )
        self._export = _stub(destination.signal, self._channel).Export
        self._metadata = tuple(destination.headers.items())

    def send(self, request: Any) -> Outcome:
        try:
            response = self._export(
                request, metadata=self._metadata, timeout=self.destination.timeout_s
            )
        except self._grpc.RpcError as error:
            return _grpc_error(error, self.destination)
        return _partial(response)

    def close(self) -> None:
        self._channel.close()


def _stub(signal: str, channel: Any) -> Any:
    if signal == "logs":
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as logs

        return logs.LogsServiceStub(channel)  # type: ignore[no-untyped-call]
    if signal == "traces":
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as traces

        return traces.TraceServiceStub(channel)  # type: ignore[no-untyped-call]
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics

    return metrics.MetricsServiceStub(channel)  # type: ignore[no-untyped-call]


def _grpc_error(error: Any, destination: Destination) -> Outcome:
    code = error.code()
    name = getattr(code, "name", str(code))
    delay = _retry_delay(error)
    retryable = name in _RETRYABLE_GRPC or (name == "RESOURCE_EXHAUSTED" and delay is not None)
    return Outcome(
        ExportResult.RETRYABLE if retryable else ExportResult.FAILURE,
        problem=f"{name} from {destination.address}: {error.details()}",
        code=name,
        retry_after_s=delay,
    )


def _retry_delay(error: Any) -> float | None:
    """The delay of a ``google.rpc.RetryInfo`` in the trailing metadata, if any."""
    try:
        raw = dict(error.trailing_metadata() or ()).get("google.rpc.retryinfo-bin")
        if raw is None:
            return None
        from google.rpc.error_details_pb2 import RetryInfo

        info = RetryInfo.FromString(raw)
        return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    except Exception:
        return None


def _read(path: str | None) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as file:
        return file.read()
