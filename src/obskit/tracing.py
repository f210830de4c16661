"""OpenTelemetry plumbing: the tracer, finished spans into the pipeline, the active span.

Spans are OpenTelemetry spans. If the application already set an SDK ``TracerProvider``,
obskit uses it (and adds a span processor turning finished spans into
:class:`~obskit.signals.SpanRecord` signals); otherwise obskit's own tracer
(:mod:`obskit._spans`: the OpenTelemetry API without the SDK's per-span machinery) makes spans
that become ``SpanRecord`` signals when they end, and a global ``TracerProvider`` that
follows obskit's current setup gives other libraries' tracers the same. The user-facing side
(``@instrument``, ``request()``, ``timer()``) is :mod:`obskit.instrumentation`.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from opentelemetry import trace
from opentelemetry.context import get_current as _current_otel_context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, get_current_span

try:  # the key OpenTelemetry keeps the active span under (stable since API 1.0)
    from opentelemetry.trace.propagation import _SPAN_KEY as _span_key

    _SPAN_KEY: str | None = _span_key
except ImportError:  # pragma: no cover - a future API without it: the public, slower path
    _SPAN_KEY = None

from obskit import _runtime, _spans, contextstack, diagnostics
from obskit.signals import SpanRecord

__all__ = [
    "active_span",
    "exclude_active_span",
    "get_tracer",
    "hex_ids",
    "in_recording_trace",
    "is_failure",
    "mark_span_failed",
    "record_exception_on_span",
    "trace_ids",
]

_setup_lock = threading.Lock()
#: (runtime, obskit's tracer, whether obskit owns tracing) for the runtime set up last.
_state: tuple[Any, trace.Tracer, bool] | None = None
#: App providers the pipeline span processor was added to (by id: added once each).
_attached: set[int] = set()


def get_tracer() -> trace.Tracer:
    """obskit's tracer for the current setup (its ``traces_sample_rate``).

    Rebuilt when ``init`` replaced the setup, so spans always follow the current one.
    """
    runtime = _runtime.current()
    state = _state
    if state is not None and state[0] is runtime:
        return state[1]
    return _setup(runtime)[1]


def _setup(runtime: Any) -> tuple[Any, trace.Tracer, bool]:
    """Use the application's SDK TracerProvider, or obskit's own tracer for ``runtime``."""
    global _state
    with _setup_lock:
        state = _state
        if state is not None and state[0] is runtime:
            return state
        provider = trace.get_tracer_provider()
        # An application that set up an SDK provider has imported the SDK: when it has not,
        # the SDK (~20 ms to import) is not needed at all.
        sdk = sys.modules.get("opentelemetry.sdk.trace")
        if sdk is not None and isinstance(provider, sdk.TracerProvider):  # the app's: join it
            if id(provider) not in _attached:
                provider.add_span_processor(PipelineSpanProcessor())  # type: ignore[arg-type]
                _attached.add(id(provider))
            state = (runtime, provider.get_tracer("obskit"), False)
        else:
            if not isinstance(provider, _CurrentSetupProvider):
                # OpenTelemetry's global provider can be set once per process: install one
                # that follows obskit's current setup, so a second init() reaches every tracer.
                trace.set_tracer_provider(_CurrentSetupProvider())
            state = (runtime, _own_tracer("obskit", runtime), True)
        _state = state
        return state


def _own_tracer(scope_name: str, runtime: Any) -> trace.Tracer:
    return _spans.Tracer(
        scope_name,
        runtime.settings.traces_sample_rate,
        runtime.resource,
        _span_started,
        _own_span_ended,
    )


class _CurrentSetupProvider(trace.TracerProvider):
    """The global TracerProvider obskit installs: every tracer follows the current setup."""

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> trace.Tracer:
        return _CurrentSetupTracer(instrumenting_module_name)


class _CurrentSetupTracer(trace.Tracer):
    """A tracer (another library's) that starts its spans with the current setup."""

    def __init__(self, scope_name: str) -> None:
        self._scope_name = scope_name
        self._state: Any = None
        self._tracer: trace.Tracer = trace.NoOpTracer()

    def _current(self) -> trace.Tracer:
        get_tracer()
        state = _state
        if state is not self._state and state is not None:
            # the app installed its own SDK provider later: nothing to follow
            own = state[2]
            self._tracer = _own_tracer(self._scope_name, state[0]) if own else trace.NoOpTracer()
            self._state = state
        return self._tracer

    def start_span(self, *args: Any, **kwargs: Any) -> Span:
        return self._current().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._current().start_as_current_span(*args, **kwargs)


def record_exception_on_span(
    exc: BaseException, attributes: dict[str, Any] | None = None, span: Span | None = None
) -> None:
    """Add an ``exception`` event to ``span`` (default: the active one), once per span.

    The error-capture path calls this so a captured exception shows on the span it happened
    in; instrumented code calls it again when the exception escapes, which adds nothing twice.
    """
    try:
        span = span if span is not None else get_current_span()
        if not span.is_recording():
            return
        span_id = span.get_span_context().span_id
        seen = getattr(exc, "__obskit_spans__", None)
        if seen is None:
            seen = set()
            try:
                exc.__obskit_spans__ = seen  # type: ignore[attr-defined]
            except Exception:
                pass
        elif span_id in seen:
            return
        seen.add(span_id)
        span.record_exception(exc, attributes=attributes)
    except Exception as problem:
        diagnostics.report("span_exception", f"could not record an exception event: {problem!r}")


#: Span ids kept out of the pipeline, with their descendants (a server span some framework
#: opened for a request obskit excludes: a health probe). Bounded; emptied as they end.
_excluded: set[int] = set()
_MAX_EXCLUDED = 10_000


def exclude_active_span() -> None:
    """Keep the active span (and spans started under it) out of obskit's exporters."""
    span = active_span()
    if span is not None and span.is_recording() and len(_excluded) < _MAX_EXCLUDED:
        _excluded.add(span.get_span_context().span_id)


def _span_started(span: Any) -> None:
    """A span started (obskit's or, through the pipeline processor, the app's SDK span)."""
    tags = contextstack.get_tags()
    settings = _runtime.current().settings
    if tags or settings.tags:  # init(tags=) < set_tags/context(tags=); span's own win
        try:
            present = span.attributes or {}
            span.set_attributes(
                {
                    k: v
                    for k, v in {**settings.tags, **tags}.items()
                    if k not in present and isinstance(v, (str, bool, int, float))
                }
            )
        except Exception as exc:
            diagnostics.report("span_tags", f"could not tag a span: {exc!r}")
    if _excluded:
        parent = span.parent
        if parent is not None and parent.span_id in _excluded:
            _excluded.add(span.get_span_context().span_id)


def _own_span_ended(span: _spans.Span) -> None:
    """One of obskit's own spans ended: its record, from its parts (no copies)."""
    try:
        attributes, events = span.finished_parts()
        _emit(span, span.scope_name, attributes, events)
    except Exception as exc:
        diagnostics.report("span_export", f"could not convert a span: {exc!r}")


def _emit(span: Any, scope: str, attributes: dict[str, Any], events: list[Any]) -> None:
    """A finished span (obskit's or an SDK ``ReadableSpan``) into the pipeline."""
    context = span.get_span_context()
    if _excluded:
        excluded_id = context.span_id
        if excluded_id in _excluded:
            _excluded.discard(excluded_id)
            return
    parent = span.parent
    start, end = span.start_time or 0, span.end_time or 0
    status = span.status
    trace_id, span_id = hex_ids(context)
    _runtime.emit(
        SpanRecord(
            timestamp=start / 1e9,
            name=span.name,
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=format(parent.span_id, "016x") if parent else None,
            duration_ms=(end - start) / 1e6,
            status=_STATUS_NAMES[status.status_code],
            attributes=attributes,
            span_kind=_KIND_NAMES[span.kind],
            events=events,
            status_message=status.description or "",
            scope=scope,
        )
    )


class PipelineSpanProcessor:
    """An OpenTelemetry SDK span processor that emits each finished span as a SpanRecord
    (added to the application's own SDK ``TracerProvider``)."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        _span_started(span)

    def on_end(self, span: Any) -> None:
        try:
            events = span.events
            _emit(
                span,
                getattr(span.instrumentation_scope, "name", "") or "",
                _attributes_of(span),
                [_event_dict(e) for e in events] if events else [],
            )
        except Exception as exc:
            diagnostics.report("span_export", f"could not convert a span: {exc!r}")

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    # Newer SDKs call these hooks on every processor.
    def _on_ending(self, span: Any) -> None:
        return None


_STATUS_NAMES = {code: code.name.lower() for code in StatusCode}
_KIND_NAMES = {kind: kind.name.lower() for kind in SpanKind}


def _attributes_of(span: Any) -> dict[str, Any]:
    """A plain copy of a finished span's attributes.

    The SDK's ``BoundedAttributes`` takes its lock once per key when copied item by item, and
    a ``ReadableSpan`` hands them out wrapped in a ``MappingProxyType``: its private
    ``_attributes`` (their inner dict, stable since SDK 1.0; immutable once the span ended) is
    copied in one step, the mapping protocol otherwise.
    """
    inner = getattr(getattr(span, "_attributes", None), "_dict", None)
    if type(inner) is dict:
        return inner.copy()
    return dict(span.attributes or {})


def _event_dict(event: Any) -> dict[str, Any]:
    return {
        "name": event.name,
        "timestamp": event.timestamp / 1e9,
        "attributes": dict(event.attributes or {}),
    }


_NOT_FAILURES = (KeyboardInterrupt, SystemExit, GeneratorExit)


def is_failure(exc: BaseException | None) -> bool:
    """Whether an exception is a failure: not an exit, an interrupt or a cancellation.

    The one decision for spans, request metrics, ``@instrument`` capture and the global hooks.
    ``asyncio.CancelledError`` and ``concurrent.futures.CancelledError`` are cancellations
    (the caller asked for them), so they never mark a span failed or make an error event.
    """
    return (
        exc is not None
        and not isinstance(exc, _NOT_FAILURES)
        and type(exc).__name__ != "CancelledError"  # asyncio's and concurrent.futures'
    )


def mark_span_failed(span: Span, exc: BaseException | None = None, why: str = "") -> None:
    """Set ``span``'s status to ERROR (described by ``why``, else the exception type) and
    add the exception's event. The one way obskit marks a span failed. Never raises."""
    try:
        description = why or (type(exc).__name__ if exc is not None else "")
        span.set_status(Status(StatusCode.ERROR, description))
        if exc is not None:
            record_exception_on_span(exc, span=span)
    except Exception as problem:
        diagnostics.report("span_status", f"could not mark a span failed: {problem!r}")


def active_span() -> Span | None:
    """The active OpenTelemetry span, or ``None``: ``get_current_span()`` without its layers.

    Log records and instrumented calls ask on every call, so the lookup is one dict access.
    """
    if _SPAN_KEY is None:
        span = get_current_span()
        return span if span.get_span_context().is_valid else None
    return _current_otel_context().get(_SPAN_KEY)  # type: ignore[return-value]


def trace_ids() -> tuple[str | None, str | None]:
    """Hex trace and span ids of the active OpenTelemetry span, or ``(None, None)``."""
    span = active_span()
    if span is None:
        return None, None
    context = span.get_span_context()
    if not context.is_valid:
        return None, None
    return hex_ids(context)


#: The last span context :func:`hex_ids` formatted, and its ids (held, so never a reused id).
_last_hex: tuple[Any, str, str] = (None, "", "")


def hex_ids(context: Any) -> tuple[str, str]:
    """The hex trace and span ids of a ``SpanContext``.

    A request's span, its log records and the finished span's record all ask for the same
    ids: the last context's are remembered (one tuple, swapped whole: safe across threads).
    """
    global _last_hex
    last = _last_hex
    if last[0] is context:
        return last[1], last[2]
    trace_id, span_id = format(context.trace_id, "032x"), format(context.span_id, "016x")
    _last_hex = (context, trace_id, span_id)
    return trace_id, span_id


def in_recording_trace() -> bool:
    """Whether a recording span is active."""
    span = active_span()
    return span is not None and span.is_recording()
