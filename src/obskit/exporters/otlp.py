"""OTLPExporter: logs, error events, spans and metrics to any OpenTelemetry collector.

Needs the ``otlp`` extra (``pip install 'obskit[otlp]'``). Speaks OTLP over gRPC or
HTTP/protobuf and honours the standard ``OTEL_EXPORTER_OTLP_*`` variables (see
:mod:`obskit.exporters._otlp_config`).

Design: the exporter encodes obskit's signals (already scrubbed by the pipeline) into OTLP
protobuf messages itself and sends them with one attempt per call; the exporter's
:class:`~obskit.processor.BatchProcessor` owns the queue and the retries. Handing spans and logs
to the OpenTelemetry SDK's own processors instead would bypass obskit's scrubbing, add a second
queue with its own drop policy, and hide whether a failure is worth retrying (the SDK exporters
answer a plain FAILURE after their own retries), which is what "lose nothing" depends on.

What arrives at the collector, under one resource (``service.name``, ``service.version``,
``deployment.environment.name``, plus ``OTEL_RESOURCE_ATTRIBUTES``; or the resource of the
application's own TracerProvider when it set one up):

* log records: body = message; attributes = fields, context included; severity number and
  text; trace and span ids; ``exception.*`` when a traceback was logged;
* error events: log records with ``exception.type``, ``exception.message``,
  ``exception.stacktrace`` and ``obskit.fingerprint``;
* health reports, alerts, anomalies: log records with ``obskit.signal`` naming the kind;
* spans (from ``@instrument``, ``obskit.request`` and any tracer on obskit's provider), with
  their events and status. When the application brought its own SDK TracerProvider, its span
  processors already deliver those spans, so by default obskit does not send them again
  (``export_spans=True`` forces it);
* metric points: gauges, and cumulative sums for counters.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from obskit import diagnostics
from obskit._version import __version__
from obskit.diagnostics import ConfigError, require_kinds, require_number
from obskit.exporters._otlp_config import SIGNALS, Destination, resolve
from obskit.exporting import ExportResult, reset_in_forked_children
from obskit.signals import Signal

if TYPE_CHECKING:
    from obskit.exporters._otlp_transport import Outcome, Transport

__all__ = ["OTLPExporter"]

_LOG_KINDS = frozenset({"log", "error", "health", "alert", "anomaly"})


class OTLPExporter:
    """Sends signals to an OpenTelemetry collector (or any OTLP receiver).

    ``endpoint`` is the collector's base address (``http://collector:4318`` for HTTP,
    ``http://collector:4317`` for gRPC; ``https://`` for TLS); ``protocol`` is
    ``"http/protobuf"`` (the default) or ``"grpc"``. Arguments left out come from the
    ``OTEL_EXPORTER_OTLP_*`` environment variables, then the OTLP defaults. A bad value raises
    :class:`~obskit.ConfigError` here; everything that goes wrong later (collector down,
    refusing, hanging, TLS failing) is counted and warned about, never raised.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        protocol: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        compression: str | None = None,
        insecure: bool | None = None,
        certificate: str | None = None,
        client_key: str | None = None,
        client_certificate: str | None = None,
        resource_attributes: Mapping[str, Any] | None = None,
        export_spans: bool | None = None,
        kinds: Collection[str] | None = None,
        max_request_bytes: int = 4_000_000,
    ) -> None:
        try:
            self.destinations: dict[str, Destination] = {
                signal: resolve(
                    signal,
                    endpoint=endpoint,
                    protocol=protocol,
                    headers=headers,
                    timeout_s=timeout_s,
                    compression=compression,
                    insecure=insecure,
                    certificate=certificate,
                    client_key=client_key,
                    client_certificate=client_certificate,
                )
                for signal in SIGNALS
            }
        except ValueError as exc:
            raise ConfigError(f"OTLPExporter: {exc}") from None
        for destination in self.destinations.values():
            for what in ("certificate", "client_key", "client_certificate"):
                path = getattr(destination, what)
                if path and not os.access(path, os.R_OK):
                    raise ConfigError(f"OTLPExporter: the {what} file {path!r} cannot be read")
        if any(d.protocol == "grpc" for d in self.destinations.values()):
            _require("grpc", "grpcio")
        _require("opentelemetry.proto", "opentelemetry-proto")
        self.resource_attributes = dict(resource_attributes or {})
        self.export_spans = export_spans
        self.kinds = require_kinds("OTLPExporter", kinds)
        require_number("OTLPExporter", "max_request_bytes", max_request_bytes, integer=True)
        #: Requests larger than this are split (gRPC servers refuse over 4 MiB by default).
        self.max_request_bytes = max_request_bytes
        #: After a RETRYABLE answer: the delay the collector asked for (read by the processor).
        self.retry_after_s: float | None = None
        self._transports: dict[str, Transport] = {}
        self._resource: Any = None
        self._setup_resource: Any = None
        reset_in_forked_children(self)
        self._start_time = time.time()
        self._pid = os.getpid()
        #: After a RETRYABLE answer: the signals of the batch not delivered yet (read by the
        #: processor, which retries or spools only those).
        self.undelivered: list[Signal] | None = None

    def __repr__(self) -> str:
        logs = self.destinations["logs"]
        return f"OTLPExporter({logs.protocol} -> {logs.address})"

    # -- the Exporter protocol -------------------------------------------------------------

    def export(self, batch: Sequence[Signal]) -> ExportResult:
        self.retry_after_s = None
        self.undelivered = None
        # Logs, traces and metrics go to separate endpoints: when one is down, the others'
        # parts are delivered and only the rest is left for the processor to retry or spool.
        undelivered: list[Signal] = []
        verdict = ExportResult.SUCCESS
        for signal, items in self._split(batch).items():
            if not items:
                continue
            requests = self._requests(signal, items)
            for index, (request, _) in enumerate(requests):
                result = self._send(signal, request).result
                if result is ExportResult.RETRYABLE:
                    verdict = ExportResult.RETRYABLE
                    for _, rest in requests[index:]:
                        undelivered.extend(rest)
                    break
                if result is ExportResult.FAILURE and verdict is ExportResult.SUCCESS:
                    verdict = ExportResult.FAILURE
        self.undelivered = undelivered if verdict is ExportResult.RETRYABLE else None
        return verdict

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        return True  # nothing is buffered here: the processor holds the queue

    def shutdown(self, timeout_s: float = 5.0) -> None:
        transports, self._transports = self._transports, {}
        for transport in transports.values():
            try:
                transport.close()
            except Exception:
                pass

    # -- internals -------------------------------------------------------------------------

    def _split(self, batch: Sequence[Signal]) -> dict[str, list[Signal]]:
        parts: dict[str, list[Signal]] = {"logs": [], "traces": [], "metrics": []}
        kinds = self.kinds
        spans = None
        for signal in batch:
            kind = signal.kind
            if kinds is not None and kind not in kinds:
                continue
            if kind in _LOG_KINDS:
                parts["logs"].append(signal)
            elif kind == "metric":
                parts["metrics"].append(signal)
            elif kind == "span":
                if spans is None:
                    spans = self._spans_wanted()
                if spans:
                    parts["traces"].append(signal)
        return parts

    def _spans_wanted(self) -> bool:
        if self.export_spans is not None:
            return self.export_spans
        return app_tracer_provider() is None

    def _requests(self, signal: str, items: list[Signal]) -> list[tuple[Any, list[Signal]]]:
        """``(request, its items)`` for ``items``: one, or halves until each fits the limit."""
        from obskit.exporters import _otlp_encode as encode

        resource, version = self._resource_proto(), __version__
        if signal == "logs":
            request = encode.encode_logs(items, resource, version)
        elif signal == "traces":
            request = encode.encode_spans(items, resource, version)
        else:
            request = encode.encode_metrics(items, resource, version, self._start_time)
        if len(items) < 2 or request.ByteSize() <= self.max_request_bytes:
            return [(request, items)]
        half = len(items) // 2
        return self._requests(signal, items[:half]) + self._requests(signal, items[half:])

    def _send(self, signal: str, request: Any) -> Outcome:
        from obskit.exporters._otlp_transport import Outcome

        destination = self.destinations[signal]
        where = f"OTLPExporter ({signal} over {destination.protocol} to {destination.address})"
        try:
            transport = self._transport(signal)
        except Exception as exc:  # unreadable certificate, bad key: nothing to retry
            diagnostics.report(
                f"otlp.{signal}.setup", f"{where}: cannot set up the connection: {exc}"
            )
            return Outcome(ExportResult.FAILURE)
        outcome = transport.send(request)
        if outcome.result is ExportResult.SUCCESS:
            if outcome.rejected or outcome.problem:
                diagnostics.report(
                    f"otlp.{signal}.rejected",
                    f"{where}: the collector rejected {outcome.rejected} item(s): "
                    f"{outcome.problem or 'no reason given'}",
                    count=max(1, outcome.rejected),
                )
            return outcome
        retrying = outcome.result is ExportResult.RETRYABLE
        diagnostics.report(
            f"otlp.{signal}.{outcome.code or 'error'}",
            f"{where}: {outcome.problem}; {'retrying' if retrying else 'batch dropped'}",
        )
        if retrying and outcome.retry_after_s is not None:
            self.retry_after_s = max(self.retry_after_s or 0.0, outcome.retry_after_s)
        return outcome

    def _after_fork_in_child(self) -> None:
        # Connections (and gRPC channels) belong to the parent: keep them referenced, unused.
        _inherited.append(self._transports)
        self._transports, self._pid = {}, os.getpid()

    def _transport(self, signal: str) -> Transport:
        if self._pid != os.getpid():  # forked: connections belong to the parent
            self._transports, self._pid = {}, os.getpid()
        transport = self._transports.get(signal)
        if transport is None:
            from obskit.exporters._otlp_transport import make_transport

            transport = self._transports[signal] = make_transport(self.destinations[signal])
        return transport

    def _resource_proto(self) -> Any:
        if self._resource is None:
            from obskit.exporters._otlp_encode import resource_proto

            self._resource = resource_proto(self._resource_attributes())
        return self._resource

    def _resource_attributes(self) -> dict[str, Any]:
        provider = app_tracer_provider()
        if provider is not None:  # the app's own identity wins, as its spans carry it
            attributes = dict(provider.resource.attributes)
        elif self._setup_resource is not None:
            attributes = dict(self._setup_resource.attributes)
        else:  # used outside obskit's pipeline: the standard environment variables only
            from opentelemetry.sdk.resources import Resource

            attributes = dict(Resource.create({}).attributes)
        attributes.update(self.resource_attributes)
        return attributes

    def set_resource(self, resource: Any) -> None:
        """The Resource of the obskit setup this exporter serves (the pipeline calls this)."""
        self._setup_resource = resource
        self._resource = None  # encoded again on the next request


#: Transports a forked child inherited (never used or closed by the child).
_inherited: list[object] = []


def _require(module: str, package: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module.split(".")[0]) is None or (
        "." in module and importlib.util.find_spec(module) is None
    ):
        raise ConfigError(
            f"OTLPExporter needs {package}: install obskit with the otlp extra "
            "(pip install 'obskit[otlp]')"
        )


def app_tracer_provider() -> Any:
    """The application's own OpenTelemetry SDK ``TracerProvider``, or ``None``.

    obskit's own global provider is not an SDK one, so this is ``None`` unless the
    application installed its own (whose exporters then carry its spans and identity).
    """
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    provider = trace.get_tracer_provider()
    return provider if isinstance(provider, TracerProvider) else None
