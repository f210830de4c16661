"""The signal records: the only types exporters ever see.

Every capability (logger, errors, spans, health, alerts, anomaly) produces one of these plain
slots dataclasses and hands it to the pipeline. ``to_dict()`` gives the JSON form every
exporter writes; it holds only JSON-safe values because the pipeline scrubs and sanitises each
signal (``scrub``) before any exporter sees it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from obskit.scrubbing import Scrubber

__all__ = [
    "Alert",
    "Anomaly",
    "ErrorEvent",
    "HealthRecord",
    "LogRecord",
    "MetricPoint",
    "Signal",
    "SpanRecord",
    "iso_time",
]

#: Any signal record (they share ``kind``, ``timestamp``, ``to_dict`` and ``scrub``).
Signal = Any


_last_second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def iso_time(timestamp: float) -> str:
    """Format a UNIX timestamp as RFC 3339 UTC with milliseconds (``...T10:00:00.123Z``).

    >>> iso_time(0.5)
    '1970-01-01T00:00:00.500Z'
    """
    global _last_second
    second = int(timestamp // 1)
    millis = int((timestamp - second) * 1000)
    cached_second, prefix = _last_second
    if cached_second != second:  # records come in bursts within a second: format it once
        moment = _dt.datetime.fromtimestamp(second, tz=_dt.timezone.utc)
        prefix = moment.strftime("%Y-%m-%dT%H:%M:%S.")
        _last_second = (second, prefix)  # one atomic swap: safe across threads
    return f"{prefix}{millis:03d}Z"


@dataclass(slots=True)
class LogRecord:
    """One structured log line: the message is ``event``, context and fields are top level."""

    kind: ClassVar[str] = "log"
    timestamp: float
    level: str
    event: str
    logger: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    service: str = ""
    environment: str = ""
    trace_id: str | None = None
    span_id: str | None = None
    exception: str | None = None

    def scrub(self, scrubber: Scrubber) -> None:
        texts = scrubber.text_cache  # (a hit is clean_text's answer, without the call)
        event, logger = self.event, self.logger
        clean = texts.get(event) if type(event) is str else None
        self.event = scrubber.clean_text(event) if clean is None else clean
        if logger:
            clean = texts.get(logger) if type(logger) is str else None
            self.logger = scrubber.clean_text(logger) if clean is None else clean
        self.fields = scrubber.clean_mapping(self.fields)
        if self.exception is not None:
            self.exception = scrubber.clean_text(self.exception)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "signal": "log",
            "timestamp": iso_time(self.timestamp),
            "level": self.level,
            "event": self.event,
        }
        if self.logger:
            out["logger"] = self.logger
        if self.service:
            out["service"] = self.service
        if self.environment:
            out["environment"] = self.environment
        if self.trace_id:
            out["trace_id"] = self.trace_id
            out["span_id"] = self.span_id
        for key, value in self.fields.items():
            # A field named like a reserved key is kept under another name, never lost.
            out["field_" + key if key in out else key] = value
        if self.exception:
            out["exception"] = self.exception
        return out


@dataclass(slots=True)
class ErrorEvent:
    """A captured exception or message, with its grouping fingerprint and breadcrumb trail.

    ``exceptions`` lists the chain outermost first; each entry is a dict with ``type``,
    ``value``, ``module`` and ``frames`` (each frame: module, function, filename, lineno,
    context_line, in_app, and optionally vars). Exception entries, frames and breadcrumbs are
    shared, read-only and already scrubbed (:class:`~obskit.scrubbing.ScrubbedMapping`): copy
    one with ``dict(...)`` to change it. ``regression`` is true for the first event of a group
    seen again after ``obskit.errors.resolve``.
    """

    kind: ClassVar[str] = "error"
    event_id: str
    timestamp: float
    level: str
    fingerprint: str
    title: str
    culprit: str = ""
    message: str = ""
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    user: dict[str, Any] | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    breadcrumbs: Sequence[dict[str, Any]] = field(default_factory=list)
    service: str = ""
    environment: str = ""
    release: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    regression: bool = False
    #: The scrubber that already cleaned title, message, exceptions and breadcrumbs (set by
    #: obskit's capture, cleared before user hooks edit the event); never exported.
    scrubbed_by: Scrubber | None = field(
        default=None, repr=False, compare=False, metadata={"exported": False}
    )

    def scrub(self, scrubber: Scrubber) -> None:
        if self.scrubbed_by is not scrubber:
            self.title = scrubber.clean_text(self.title)
            self.message = scrubber.clean_text(self.message)
            self.exceptions = scrubber.clean_value(self.exceptions)
            self.breadcrumbs = scrubber.clean_value(self.breadcrumbs)
        self.context = scrubber.clean_mapping(self.context)
        self.user = scrubber.clean_mapping(self.user) if self.user else self.user
        self.tags = scrubber.clean_mapping(self.tags)

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.kind,
            "event_id": self.event_id,
            "timestamp": iso_time(self.timestamp),
            "level": self.level,
            "fingerprint": self.fingerprint,
            "title": self.title,
            "culprit": self.culprit,
            "message": self.message,
            "exceptions": self.exceptions,
            "context": self.context,
            "user": self.user,
            "tags": self.tags,
            "breadcrumbs": self.breadcrumbs,
            "service": self.service,
            "environment": self.environment,
            "release": self.release,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "regression": self.regression,
        }


@dataclass(slots=True)
class SpanRecord:
    """A finished span (from ``@instrument``, ``obskit.request`` or any OpenTelemetry tracer)."""

    kind: ClassVar[str] = "span"
    timestamp: float
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    duration_ms: float
    status: str = "ok"
    attributes: dict[str, Any] = field(default_factory=dict)
    service: str = ""
    #: OpenTelemetry span kind, lower case: internal, server, client, producer, consumer.
    span_kind: str = "internal"
    #: Span events (an ``exception`` event per recorded exception): name, timestamp, attributes.
    events: list[dict[str, Any]] = field(default_factory=list)
    status_message: str = ""
    #: The instrumentation scope (tracer name) that created the span.
    scope: str = ""

    def scrub(self, scrubber: Scrubber) -> None:
        name = self.name
        clean = scrubber.text_cache.get(name) if type(name) is str else None
        self.name = scrubber.clean_text(name) if clean is None else clean
        self.attributes = scrubber.clean_mapping(self.attributes)
        if self.events:
            self.events = scrubber.clean_value(self.events)
        if self.status_message:
            self.status_message = scrubber.clean_text(self.status_message)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "signal": self.kind,
            "timestamp": iso_time(self.timestamp),
            "name": self.name,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "duration_ms": self.duration_ms,
            "status": self.status,
            "attributes": self.attributes,
            "service": self.service,
        }
        if self.span_kind != "internal":
            out["span_kind"] = self.span_kind
        if self.events:
            out["events"] = self.events
        if self.status_message:
            out["status_message"] = self.status_message
        return out


@dataclass(slots=True)
class MetricPoint:
    """One series of one metric at a collection, in OpenTelemetry's data model.

    ``metric_type`` is the instrument kind: ``"counter"`` (a monotonic sum),
    ``"up_down_counter"`` (a sum that goes both ways), ``"gauge"`` or ``"histogram"``.
    ``value`` is the sum, the gauge's value, or the histogram's sum of samples. Sums and
    histograms are ``"cumulative"`` since ``start_timestamp`` or ``"delta"`` since the previous
    collection (``temporality``). A histogram also carries ``count``, ``bounds`` (upper-inclusive
    bucket bounds), ``bucket_counts`` (one per bound plus +Inf, not cumulative), ``min``, ``max``
    and ``exemplars`` (dicts: bucket, value, timestamp, trace_id, span_id).
    """

    kind: ClassVar[str] = "metric"
    timestamp: float
    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)
    metric_type: str = "gauge"
    unit: str = ""
    service: str = ""
    description: str = ""
    start_timestamp: float | None = None
    temporality: str = "cumulative"
    count: int = 0
    bounds: list[float] = field(default_factory=list)
    bucket_counts: list[int] = field(default_factory=list)
    min: float | None = None
    max: float | None = None
    exemplars: list[dict[str, Any]] = field(default_factory=list)

    @property
    def monotonic(self) -> bool:
        """Whether the value only goes up (a counter, a histogram's count and buckets)."""
        return self.metric_type in ("counter", "histogram")

    def scrub(self, scrubber: Scrubber) -> None:
        self.labels = scrubber.clean_mapping(self.labels)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "signal": self.kind,
            "timestamp": iso_time(self.timestamp),
            "name": self.name,
            "value": self.value,
            "labels": self.labels,
            "metric_type": self.metric_type,
            "unit": self.unit,
            "service": self.service,
        }
        if self.description:
            out["description"] = self.description
        if self.metric_type != "gauge":
            out["temporality"] = self.temporality
            if self.start_timestamp is not None:
                out["start_timestamp"] = iso_time(self.start_timestamp)
        if self.metric_type == "histogram":
            out.update(
                count=self.count,
                bounds=self.bounds,
                bucket_counts=self.bucket_counts,
                min=self.min,
                max=self.max,
            )
            if self.exemplars:
                out["exemplars"] = self.exemplars
        return out


@dataclass(slots=True)
class HealthRecord:
    """The health signal: one aggregated run, as ``obskit.health.HealthReport.to_signal`` makes it.

    ``checks`` is the IETF health+json checks object: ``"name:measurement"`` -> a one-item list
    of result dicts; ``changed`` names the checks whose status changed.
    """

    kind: ClassVar[str] = "health"
    timestamp: float
    status: str
    checks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    service: str = ""
    changed: list[str] = field(default_factory=list)

    def scrub(self, scrubber: Scrubber) -> None:
        self.checks = scrubber.clean_mapping(self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.kind,
            "timestamp": iso_time(self.timestamp),
            "status": self.status,
            "checks": self.checks,
            "service": self.service,
            "changed": self.changed,
        }


@dataclass(slots=True)
class Alert:
    """A state change of one alert instance (rule + label set).

    ``state`` is "pending", "firing" or "resolved" (from evaluation), or "acknowledged"
    (someone took it). ``active_since`` is when the condition first held, ``fired_at`` when it
    started firing, ``resolved_at`` when it stopped; ``details`` holds the rest (threshold,
    metric, who acknowledged or resolved it and why).
    """

    kind: ClassVar[str] = "alert"
    timestamp: float
    rule: str
    state: str
    severity: str
    value: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    active_since: float | None = None
    fingerprint: str = ""
    service: str = ""
    fired_at: float | None = None
    resolved_at: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def scrub(self, scrubber: Scrubber) -> None:
        # An annotation templated from a secret label ("token {{ $labels.token }} leaked")
        # carries the secret's value without its name: take those values out too.
        secrets = [
            value
            for key, value in self.labels.items()
            if isinstance(value, str) and len(value) >= 4 and scrubber.is_denied_key(key)
        ]
        self.labels = scrubber.clean_mapping(self.labels)
        self.annotations = scrubber.clean_mapping(self.annotations)
        self.details = scrubber.clean_mapping(self.details)
        if secrets:
            self.annotations = {
                key: _without(value, secrets) if isinstance(value, str) else value
                for key, value in self.annotations.items()
            }

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.kind,
            "timestamp": iso_time(self.timestamp),
            "rule": self.rule,
            "state": self.state,
            "severity": self.severity,
            "value": self.value,
            "labels": self.labels,
            "annotations": self.annotations,
            "active_since": iso_time(self.active_since) if self.active_since else None,
            "fingerprint": self.fingerprint,
            "service": self.service,
            "fired_at": iso_time(self.fired_at) if self.fired_at else None,
            "resolved_at": iso_time(self.resolved_at) if self.resolved_at else None,
            "details": self.details,
        }


def _without(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[Filtered]")
    return text


@dataclass(slots=True)
class Anomaly:
    """A point a detector flagged on a metric series, with its expected band."""

    kind: ClassVar[str] = "anomaly"
    timestamp: float
    metric: str
    value: float
    score: float
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    detector: str = ""
    service: str = ""
    member: str = ""  # what fired: the detector, or the member or view of a composite one
    reason: str = ""  # why, in words a person reads

    def scrub(self, scrubber: Scrubber) -> None:
        self.labels = scrubber.clean_mapping(self.labels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.kind,
            "timestamp": iso_time(self.timestamp),
            "metric": self.metric,
            "value": self.value,
            "score": self.score,
            "expected": self.expected,
            "lower": self.lower,
            "upper": self.upper,
            "labels": self.labels,
            "detector": self.detector,
            "member": self.member,
            "reason": self.reason,
            "service": self.service,
        }
