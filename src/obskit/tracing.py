"""OpenTelemetry plumbing: the tracer, finished spans into the pipeline, the active span.

Spans are OpenTelemetry spans. If the application already set an SDK ``TracerProvider``,
obskit uses it; otherwise it installs one whose finished spans become
:class:`~obskit.signals.SpanRecord` signals in the pipeline. The user-facing side
(``@instrument``, ``request()``, ``timer()``) is :mod:`obskit.instrumentation`.
"""

from __future__ import annotations

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

from obskit import _runtime, contextstack, diagnostics
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
#: (runtime, obskit's tracer) for the runtime the tracer was set up for.
_state: tuple[Any, trace.Tracer] | None = None
#: The SDK TracerProvider obskit built for the current runtime (None: the app brought one).
_own_sdk_provider: Any = None
#: App providers the pipeline span processor was added to (by id: added once each).
_attached: set[int] = set()


def get_tracer() -> trace.Tracer:
    """obskit's tracer for the current setup (its Resource and ``traces_sample_rate``).

    Rebuilt when ``init`` replaced the setup, so spans always carry the current service.
    """
    runtime = _runtime.current()
    state = _state
    if state is not None and state[0] is runtime:
        return state[1]
    return _setup(runtime)


def _sampler(rate: float) -> Any:
    """Parent-based sampling at ``rate``; at 1 the SDK's always-on root sampler (no ratio
    arithmetic per span)."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

    return ParentBased(ALWAYS_ON if rate >= 1 else TraceIdRatioBased(rate))


def _setup(runtime: Any) -> trace.Tracer:
    """Use the application's SDK TracerProvider, or build one for ``runtime``."""
    global _state, _own_sdk_provider
    from opentelemetry.sdk.trace import TracerProvider

    with _setup_lock:
        state = _state
        if state is not None and state[0] is runtime:
            return state[1]
        provider = trace.get_tracer_provider()
        if isinstance(provider, TracerProvider):  # the application's own: join it
            if id(provider) not in _attached:
                provider.add_span_processor(PipelineSpanProcessor())  # type: ignore[arg-type]
                _attached.add(id(provider))
            _own_sdk_provider = None
            tracer = provider.get_tracer("obskit")
        else:
            sdk = TracerProvider(
                resource=runtime.resource,
                sampler=_sampler(runtime.settings.traces_sample_rate),
                # one provider per init: an atexit hook each would keep every one alive, and
                # its only processor (the pipeline's) has nothing to flush at exit
                shutdown_on_exit=False,
            )
            sdk.add_span_processor(PipelineSpanProcessor())  # type: ignore[arg-type]
            _own_sdk_provider = sdk
            if not isinstance(provider, _CurrentSetupProvider):
                # OpenTelemetry's global provider can be set once per process: install one
                # that follows obskit's current setup, so a second init() reaches every tracer.
                trace.set_tracer_provider(_CurrentSetupProvider())
            tracer = sdk.get_tracer("obskit")
        _state = (runtime, tracer)
        return tracer


def _current_sdk_provider() -> Any:
    """The SDK provider of the current setup (set up on first use)."""
    get_tracer()
    return _own_sdk_provider


class _CurrentSetupProvider(trace.TracerProvider):
    """The global TracerProvider obskit installs: every tracer follows the current setup."""

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> trace.Tracer:
        key = (instrumenting_module_name, instrumenting_library_version, schema_url, attributes)
        return _CurrentSetupTracer(key)


class _CurrentSetupTracer(trace.Tracer):
    """A tracer that starts its spans with the current setup's SDK tracer."""

    def __init__(self, key: tuple[Any, ...]) -> None:
        self._key = key
        self._provider: Any = None
        self._tracer: Any = None

    def _current(self) -> Any:
        provider = _current_sdk_provider()
        if provider is None:  # the app installed its own provider later: nothing to follow
            return trace.NoOpTracer()
        if provider is not self._provider:
            self._tracer = provider.get_tracer(*self._key)
            self._provider = provider
        return self._tracer

    def start_span(self, *args: Any, **kwargs: Any) -> Span:
        return self._current().start_span(*args, **kwargs)  # type: ignore[no-any-return]

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


class PipelineSpanProcessor:
    """An OpenTelemetry span processor that emits each finished span as a SpanRecord."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
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

    def on_end(self, span: Any) -> None:
        if _excluded:
            span_id = span.get_span_context().span_id
            if span_id in _excluded:
                _excluded.discard(span_id)
                return
        try:
            context = span.get_span_context()
            parent = span.parent
            start, end = span.start_time or 0, span.end_time or 0
            status = span.status
            events = span.events
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
                    attributes=_attributes_of(span),
                    span_kind=_KIND_NAMES[span.kind],
                    events=[_event_dict(e) for e in events] if events else [],
                    status_message=status.description or "",
                    scope=getattr(span.instrumentation_scope, "name", "") or "",
                )
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
