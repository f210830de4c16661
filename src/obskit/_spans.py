"""obskit's own OpenTelemetry tracer: API spans that become signals when they end.

When the application has not set up an OpenTelemetry SDK, obskit's spans only ever go to one
place, its pipeline, as :class:`~obskit.signals.SpanRecord`. The SDK's span machinery (a lock
and a validated ``BoundedAttributes`` per span, a span-processor fan-out, a ``ReadableSpan``
copy at the end) then costs a web request several times what the span itself needs. These
spans implement the OpenTelemetry *API* (``opentelemetry.trace.Span`` and ``Tracer``), so every
library that uses the API (``trace.get_tracer``, ``use_span``, ``get_current_span``, W3C
propagation, FastAPI's telemetry) works with them unchanged, and they behave as the SDK's do
where it shows: parent-based sampling with a trace-id ratio for roots, random 128/64-bit ids,
attribute keys and values cleaned by the installed API's own function (the one the SDK's
spans use), the SDK's default limits (128 attributes, 128 events; full, the oldest
attribute goes), ``set_status`` rules (OK is final, UNSET ignored), ``record_exception``'s
``exception.*`` event, and ``with span:`` recording an escaping exception and the ERROR status.

An application that installed its own SDK ``TracerProvider`` keeps it (see
:mod:`obskit.tracing`): this tracer is only for the setup obskit owns.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType, TracebackType
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import (
    INVALID_SPAN_ID,
    INVALID_TRACE_ID,
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from opentelemetry.util.types import Attributes, AttributeValue

from obskit import diagnostics

try:  # what the SDK's tracer uses: a context manager that also decorates (async) functions
    from opentelemetry.util._decorator import _agnosticcontextmanager
except ImportError:  # pragma: no cover - an API without it
    from contextlib import contextmanager as _agnosticcontextmanager  # type: ignore[assignment]

__all__ = ["MAX_ATTRIBUTES", "MAX_EVENTS", "Span", "Tracer", "clean_value", "cleaned"]

#: The SDK's default limits (``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT``, ``OTEL_SPAN_EVENT_COUNT_LIMIT``).
MAX_ATTRIBUTES = 128
MAX_EVENTS = 128

_PRIMITIVES = (str, bool, int, float)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_EMPTY_STATE = TraceState()
_UNSET = Status(StatusCode.UNSET)
_getrandbits = random.getrandbits
_MISSING = object()
#: Held for the instant a span turns ended (one lock for all spans: none to make per span).
_ending = threading.Lock()
_time_ns = time.time_ns


try:  # the installed API's own rules: the SDK's spans clean every value with them
    from opentelemetry.attributes import _clean_attribute_value

    #: Whether the installed OpenTelemetry drops a value it cleans to ``None``.
    _NONE_DROPS = False

    def clean_value(key: str, value: Any) -> Any:
        """``value`` as the installed OpenTelemetry keeps it as an attribute value
        (sequences become tuples), or ``None``.

        >>> clean_value("k", 3), clean_value("k", ["a", None])
        (3, ('a', None))
        """
        return value if isinstance(value, _PRIMITIVES) else _clean_attribute_value(value, None)

except ImportError:  # pragma: no cover - older APIs: one primitive type, None means dropped
    from opentelemetry.attributes import _clean_attribute  # type: ignore[attr-defined,unused-ignore]

    _NONE_DROPS = True

    def clean_value(key: str, value: Any) -> Any:  # type: ignore[misc,unused-ignore]
        return value if isinstance(value, _PRIMITIVES) else _clean_attribute(key, value, None)


def cleaned(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes the installed OpenTelemetry would keep, as a new dict (keys are
    non-empty text; at most :data:`MAX_ATTRIBUTES`, the last ones kept)."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if not key or not isinstance(key, str):
            diagnostics.report("span_attribute", f"a span attribute key must be text: {key!r}")
            continue
        if not isinstance(value, _PRIMITIVES):
            value = clean_value(key, value)
            if value is None and _NONE_DROPS:  # pragma: no cover - older APIs
                continue
        out[key] = value
    while len(out) > MAX_ATTRIBUTES:
        del out[next(iter(out))]
        diagnostics.report("span_attribute_limit", "a span reached 128 attributes")
    return out


class Span(trace.Span):
    """A recording span of obskit's tracer. Read-only views: ``name``, ``kind``, ``parent``,
    ``attributes``, ``events``, ``status``, ``start_time``, ``end_time`` (ns since the epoch),
    ``scope_name`` (the tracer's name) and ``resource`` (the setup's OpenTelemetry Resource)."""

    __slots__ = (
        "_attributes",
        "_context",
        "_end_time",
        "_events",
        "_on_end",
        "_record_exception",
        "_set_status_on_exception",
        "_status",
        "kind",
        "name",
        "parent",
        "resource",
        "scope_name",
        "start_time",
    )

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        scope_name: str,
        resource: Any,
        on_end: Callable[[Span], None],
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> None:
        self.name = name
        self._context = context
        self.parent = parent
        self.kind = kind
        self._attributes = attributes
        self.scope_name = scope_name
        self.resource = resource
        self._on_end = on_end
        self.start_time = start_time if start_time is not None else _time_ns()
        self._end_time: int | None = None
        self._events: list[dict[str, Any]] | None = None
        self._status = _UNSET
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception

    # -- what the pipeline reads once the span ended -----------------------------------------

    @property
    def attributes(self) -> Mapping[str, Any]:
        return MappingProxyType(self._attributes)

    @property
    def events(self) -> tuple[dict[str, Any], ...]:
        return tuple(self._events or ())

    @property
    def status(self) -> Status:
        return self._status

    @property
    def end_time(self) -> int | None:
        return self._end_time

    def finished_parts(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The attributes and events themselves (for the ended span's record: no copies)."""
        return self._attributes, self._events or []

    # -- the OpenTelemetry API ---------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        if self._end_time is not None:
            return
        if not key or not isinstance(key, str):
            diagnostics.report("span_attribute", f"a span attribute key must be text: {key!r}")
            return
        if not isinstance(value, _PRIMITIVES):
            value = clean_value(key, value)
            if value is None and _NONE_DROPS:  # pragma: no cover - older APIs
                return
        attributes = self._attributes
        if attributes.pop(key, _MISSING) is _MISSING and len(attributes) >= MAX_ATTRIBUTES:
            # full: the oldest goes, as the SDK's does (a key set again moves to the end)
            try:
                del attributes[next(iter(attributes))]
            except (KeyError, RuntimeError, StopIteration):  # another thread changed it
                pass
            diagnostics.report("span_attribute_limit", "a span reached 128 attributes")
        attributes[key] = value

    def add_event(
        self, name: str, attributes: Attributes = None, timestamp: int | None = None
    ) -> None:
        if self._end_time is not None:
            return
        events = self._events
        if events is None:
            events = self._events = []
        elif len(events) >= MAX_EVENTS:
            diagnostics.report("span_event_limit", "a span reached 128 events")
            return
        stamp = timestamp if timestamp is not None else _time_ns()
        values = cleaned(attributes) if attributes else {}
        events.append({"name": name, "timestamp": stamp / 1e9, "attributes": values})

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        """Links are not recorded (obskit's span records have no links)."""

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._end_time is not None or self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, StatusCode):
            if status is StatusCode.UNSET:
                return
            self._status = Status(status, description)
        elif status.status_code is not StatusCode.UNSET:
            self._status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        module = type(exception).__module__
        qualname = type(exception).__qualname__
        event: dict[str, Any] = {
            "exception.type": f"{module}.{qualname}"
            if module and module != "builtins"
            else qualname,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            event.update(attributes)
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        with _ending:  # ended once, whichever threads call it
            if self._end_time is not None:
                return
            self._end_time = end_time if end_time is not None else _time_ns()
        self._on_end(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if exc_val is not None and self._end_time is None:
            if self._record_exception:
                self.record_exception(exc_val, escaped=True)
            if self._set_status_on_exception:
                self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        self.end()

    def __repr__(self) -> str:
        return f"Span(name={self.name!r}, context={self._context!r})"


class Tracer(trace.Tracer):
    """Starts :class:`Span` s for ``resource``: parent-based sampling, roots sampled at
    ``sample_rate`` (the SDK's ``ParentBased(TraceIdRatioBased(rate))``: a root is sampled when
    the low 64 bits of its trace id fall under ``rate`` of their range). ``on_start`` sees each
    recording span as it starts, ``on_end`` as it ends."""

    def __init__(
        self,
        scope_name: str,
        sample_rate: float,
        resource: Any,
        on_start: Callable[[Span], None],
        on_end: Callable[[Span], None],
    ) -> None:
        self.scope_name = scope_name
        self.sample_rate = sample_rate
        self.resource = resource
        self._bound = round(sample_rate * (1 << 64))
        self._on_start = on_start
        self._on_end = on_end

    def start_span(
        self,
        name: str,
        context: Any = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        parent: SpanContext | None = trace.get_current_span(context).get_span_context()
        if parent is not None and parent.is_valid:
            trace_id = parent.trace_id
            sampled = parent.trace_flags.sampled
            state = parent.trace_state
        else:
            parent = None
            trace_id = _getrandbits(128)
            while trace_id == INVALID_TRACE_ID:  # pragma: no cover - one in 2**128
                trace_id = _getrandbits(128)
            sampled = self._bound >= (1 << 64) or (trace_id & 0xFFFFFFFFFFFFFFFF) < self._bound
            state = _EMPTY_STATE
        span_id = _getrandbits(64)
        while span_id == INVALID_SPAN_ID:  # pragma: no cover - one in 2**64
            span_id = _getrandbits(64)
        span_context = SpanContext(
            trace_id, span_id, False, _SAMPLED if sampled else _NOT_SAMPLED, state
        )
        if not sampled:
            return NonRecordingSpan(span_context)
        span = Span(
            name,
            span_context,
            parent,
            kind,
            cleaned(attributes) if attributes else {},
            self.scope_name,
            self.resource,
            self._on_end,
            start_time,
            record_exception,
            set_status_on_exception,
        )
        self._on_start(span)
        return span

    @_agnosticcontextmanager
    def start_as_current_span(
        self,
        name: str,
        context: Any = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        span = self.start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current
