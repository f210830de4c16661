"""obskit signals as OTLP protobuf requests (``opentelemetry-proto`` messages).

* A :class:`~obskit.signals.LogRecord` becomes an OTLP log record: the message is the body, the
  fields (context included) are attributes, the level gives severity number and text, the
  trace and span ids correlate it; a logged traceback adds the ``exception.*`` attributes.
* An :class:`~obskit.signals.ErrorEvent` becomes a log record carrying the semantic-convention
  ``exception.type``, ``exception.message`` and ``exception.stacktrace`` plus
  ``obskit.fingerprint``, ``obskit.event_id`` and ``obskit.culprit``.
* A :class:`~obskit.signals.SpanRecord` becomes a span with its events and status.
* :class:`~obskit.signals.MetricPoint` s become sums (monotonic for counters), gauges, or
  explicit-bucket histograms with exemplars, in the point's temporality.

The log records of one logger share an instrumentation scope named after the logger, the way
the OpenTelemetry logging bridge does it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as ProtoLogRecord
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

__all__ = ["encode_logs", "encode_metrics", "encode_spans", "exception_attributes"]

#: Severity numbers of the OpenTelemetry log data model.
SEVERITY = {"trace": 1, "debug": 5, "info": 9, "warning": 13, "error": 17, "critical": 21}
_SPAN_KINDS = {
    "internal": Span.SPAN_KIND_INTERNAL,
    "server": Span.SPAN_KIND_SERVER,
    "client": Span.SPAN_KIND_CLIENT,
    "producer": Span.SPAN_KIND_PRODUCER,
    "consumer": Span.SPAN_KIND_CONSUMER,
}
_STATUS = {"ok": Status.STATUS_CODE_OK, "error": Status.STATUS_CODE_ERROR}
_INT64 = (-(2**63), 2**63 - 1)


def _nanos(timestamp: float) -> int:
    return int(timestamp * 1e9)


def _set_value(target: AnyValue, value: Any) -> None:
    """Fill an ``AnyValue`` in place (signals are JSON-safe after scrubbing)."""
    kind = type(value)
    if kind is str:
        target.string_value = value
    elif kind is bool:
        target.bool_value = value
    elif kind is int:
        if _INT64[0] <= value <= _INT64[1]:
            target.int_value = value
        else:
            target.string_value = str(value)
    elif kind is float:
        target.double_value = value
    elif value is None:
        return  # an empty AnyValue: the data model's null
    elif isinstance(value, Mapping):
        _set_attributes(target.kvlist_value.values, value.items())
    elif isinstance(value, (list, tuple)):
        values = target.array_value.values
        for item in value:
            _set_value(values.add(), item)
    else:
        target.string_value = str(value)


def _set_attributes(target: Any, items: Iterable[tuple[Any, Any]]) -> None:
    for key, value in items:
        attribute = target.add()
        attribute.key = key if type(key) is str else str(key)
        _set_value(attribute.value, value)


def _ids(record: Any, trace_id: str | None, span_id: str | None) -> None:
    if trace_id and span_id:
        try:
            record.trace_id = bytes.fromhex(trace_id)
            record.span_id = bytes.fromhex(span_id)
        except ValueError:
            pass  # not hex: leave the record uncorrelated rather than fail the batch


def resource_proto(attributes: Mapping[str, Any]) -> Resource:
    """A ``Resource`` message from attributes such as ``service.name``."""
    resource = Resource()
    _set_attributes(resource.attributes, attributes.items())
    return resource


def encode_logs(logs: Sequence[Any], resource: Resource, version: str) -> ExportLogsServiceRequest:
    """One request for a batch of LogRecord and ErrorEvent signals."""
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.CopyFrom(resource)
    scopes: dict[str, Any] = {}
    for signal in logs:
        kind = signal.kind
        name = (signal.logger or "obskit") if kind == "log" else f"obskit.{kind}"
        scope = scopes.get(name)
        if scope is None:
            scope = scopes[name] = resource_logs.scope_logs.add()
            scope.scope.name = name
            scope.scope.version = version
        record = scope.log_records.add()
        if kind == "log":
            _fill_log(record, signal)
        elif kind == "error":
            _fill_error(record, signal)
        else:
            _fill_event(record, signal)
    return request


def _fill_log(record: ProtoLogRecord, log: Any) -> None:
    record.time_unix_nano = record.observed_time_unix_nano = _nanos(log.timestamp)
    record.severity_number = SEVERITY.get(log.level, 9)  # type: ignore[assignment]
    record.severity_text = log.level.upper()
    record.body.string_value = log.event
    _set_attributes(record.attributes, log.fields.items())
    if log.exception:
        _set_attributes(record.attributes, exception_attributes(log.exception).items())
    _ids(record, log.trace_id, log.span_id)


def _fill_error(record: ProtoLogRecord, event: Any) -> None:
    record.time_unix_nano = record.observed_time_unix_nano = _nanos(event.timestamp)
    record.severity_number = SEVERITY.get(event.level, 17)  # type: ignore[assignment]
    record.severity_text = event.level.upper()
    record.body.string_value = event.title or event.message
    attributes: dict[str, Any] = dict(event.context)
    attributes.update({f"tags.{k}": v for k, v in event.tags.items()})
    if event.user:
        attributes.update({f"user.{k}": v for k, v in event.user.items()})
    if event.exceptions:
        outermost = event.exceptions[0]
        attributes["exception.type"] = _qualified(outermost)
        attributes["exception.message"] = str(outermost.get("value", ""))
        attributes["exception.stacktrace"] = render_stacktrace(event.exceptions)
    elif event.message:
        attributes["exception.message"] = event.message
    attributes["obskit.fingerprint"] = event.fingerprint
    attributes["obskit.event_id"] = event.event_id
    if event.culprit:
        attributes["obskit.culprit"] = event.culprit
    _set_attributes(record.attributes, attributes.items())
    _ids(record, event.trace_id, event.span_id)


_EVENT_SEVERITY = {"fail": 17, "firing": 13, "warn": 13, "pending": 9}


def _fill_event(record: ProtoLogRecord, signal: Any) -> None:
    """Health reports, alerts and anomalies: a log record with the signal's fields."""
    data = signal.to_dict()
    kind = data.pop("signal", signal.kind)
    data.pop("timestamp", None)
    data.pop("service", None)
    state = str(data.get("state") or data.get("status") or "")
    record.time_unix_nano = record.observed_time_unix_nano = _nanos(signal.timestamp)
    number = 13 if kind == "anomaly" else _EVENT_SEVERITY.get(state, 9)
    record.severity_number = number  # type: ignore[assignment]
    record.severity_text = {9: "INFO", 13: "WARNING", 17: "ERROR"}[number]
    subject = data.get("rule") or data.get("metric") or ""
    record.body.string_value = " ".join(str(p) for p in (kind, subject, state) if p)
    _set_attributes(record.attributes, [("obskit.signal", kind), *data.items()])


def _qualified(exception: Mapping[str, Any]) -> str:
    module, name = exception.get("module") or "", str(exception.get("type", ""))
    return name if module in ("", "builtins", "__main__") else f"{module}.{name}"


def render_stacktrace(exceptions: Sequence[Mapping[str, Any]]) -> str:
    """A Python-style traceback from an ErrorEvent's chain (outermost first in the event)."""
    parts: list[str] = []
    for index, exception in enumerate(reversed(exceptions)):
        if index:
            parts.append(
                "\nDuring handling of the above exception, another exception occurred:\n\n"
            )
        parts.append("Traceback (most recent call last):\n")
        for frame in exception.get("frames") or []:
            parts.append(
                f'  File "{frame.get("filename", "?")}", line {frame.get("lineno", "?")}, '
                f"in {frame.get('function', '?')}\n"
            )
            if frame.get("context_line"):
                parts.append(f"    {str(frame['context_line']).strip()}\n")
        parts.append(f"{_qualified(exception)}: {exception.get('value', '')}\n")
    return "".join(parts)


def exception_attributes(text: str) -> dict[str, str]:
    """``exception.*`` attributes from a formatted traceback (its last line names the error).

    >>> exception_attributes("Traceback ...\\nValueError: bad input\\n")["exception.type"]
    'ValueError'
    """
    last = next((line for line in reversed(text.splitlines()) if line.strip()), "")
    kind, sep, message = last.partition(": ")
    if not sep and not last.strip().isidentifier():
        kind, message = "", last
    return {
        "exception.type": kind.strip(),
        "exception.message": message.strip(),
        "exception.stacktrace": text,
    }


def encode_spans(
    spans: Sequence[Any], resource: Resource, version: str
) -> ExportTraceServiceRequest:
    """One request for a batch of SpanRecord signals."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.CopyFrom(resource)
    scopes: dict[str, Any] = {}
    for record in spans:
        name = getattr(record, "scope", "") or "obskit"
        scope = scopes.get(name)
        if scope is None:
            scope = scopes[name] = resource_spans.scope_spans.add()
            scope.scope.name = name
            if name == "obskit":
                scope.scope.version = version
        span = scope.spans.add()
        try:
            span.trace_id = bytes.fromhex(record.trace_id)
            span.span_id = bytes.fromhex(record.span_id)
            if record.parent_span_id:
                span.parent_span_id = bytes.fromhex(record.parent_span_id)
        except ValueError:
            del scope.spans[-1]  # unusable ids: a span the collector would reject anyway
            continue
        span.name = record.name
        span.kind = _SPAN_KINDS.get(getattr(record, "span_kind", ""), Span.SPAN_KIND_INTERNAL)
        span.start_time_unix_nano = _nanos(record.timestamp)
        span.end_time_unix_nano = span.start_time_unix_nano + int(record.duration_ms * 1e6)
        _set_attributes(span.attributes, record.attributes.items())
        for item in getattr(record, "events", None) or ():
            event = span.events.add()
            event.name = str(item.get("name", ""))
            event.time_unix_nano = _nanos(float(item.get("timestamp", record.timestamp)))
            _set_attributes(event.attributes, (item.get("attributes") or {}).items())
        span.status.code = _STATUS.get(record.status, Status.STATUS_CODE_UNSET)
        if record.status == "error":
            span.status.message = getattr(record, "status_message", "") or ""
    return request


def encode_metrics(
    points: Sequence[Any], resource: Resource, version: str, start_time: float
) -> ExportMetricsServiceRequest:
    """One request for a batch of MetricPoint signals: a metric per name, a point per series.

    Counters are monotonic sums, up-down counters non-monotonic sums, histograms explicit-bucket
    histograms with exemplars, the rest gauges; sums and histograms keep the point's
    temporality and start time (``start_time`` when a point has none).
    """
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.CopyFrom(resource)
    scope = resource_metrics.scope_metrics.add()
    scope.scope.name = "obskit"
    scope.scope.version = version
    metrics: dict[tuple[str, str, str, str], Any] = {}
    for point in points:
        value = point.value
        if type(value) not in (int, float):
            continue  # scrubbing turned NaN or infinity into a string: not a number to send
        kind = point.metric_type
        shape = _SHAPES.get(kind, "gauge")
        temporality = getattr(point, "temporality", "cumulative")
        key = (point.name, shape, point.unit, temporality)
        metric = metrics.get(key)
        if metric is None:
            metric = metrics[key] = scope.metrics.add()
            metric.name = point.name
            metric.unit = point.unit
            metric.description = getattr(point, "description", "") or ""
            if shape != "gauge":
                data = getattr(metric, shape)
                data.aggregation_temporality = _TEMPORALITY[temporality]
                if shape == "sum":
                    data.is_monotonic = kind in ("counter", "sum")
        data = getattr(metric, shape)
        number = data.data_points.add()
        number.time_unix_nano = _nanos(point.timestamp)
        if shape != "gauge":
            start = getattr(point, "start_timestamp", None)
            start = min(start_time, point.timestamp) if start is None else start
            number.start_time_unix_nano = _nanos(start)
        _set_attributes(number.attributes, point.labels.items())
        if shape == "histogram":
            _fill_histogram(number, point)
        else:
            number.as_double = float(value)
    return request


_SHAPES = {"counter": "sum", "sum": "sum", "up_down_counter": "sum", "histogram": "histogram"}
_TEMPORALITY = {
    "cumulative": AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE,
    "delta": AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA,
}


def _fill_histogram(target: Any, point: Any) -> None:
    target.count = int(point.count)
    target.sum = float(point.value)
    target.explicit_bounds.extend(float(b) for b in point.bounds)
    target.bucket_counts.extend(int(n) for n in point.bucket_counts)
    if point.min is not None and point.count:
        target.min = float(point.min)
    if point.max is not None and point.count:
        target.max = float(point.max)
    for sample in point.exemplars:
        exemplar = target.exemplars.add()
        exemplar.time_unix_nano = _nanos(float(sample["timestamp"]))
        exemplar.as_double = float(sample["value"])
        try:
            exemplar.trace_id = bytes.fromhex(sample["trace_id"])
            exemplar.span_id = bytes.fromhex(sample["span_id"])
        except (KeyError, TypeError, ValueError):
            pass
