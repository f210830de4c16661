"""OpenTelemetry plumbing: the tracer, finished spans into the pipeline, the active span.

Spans are OpenTelemetry spans. If the application already set an SDK ``TracerProvider``,
obskit uses it; otherwise it installs one whose finished spans become
:class:`~obskit.signals.SpanRecord` signals in the pipeline. The user-facing side
(``@instrument``, ``request()``, ``timer()``) is :mod:`obskit.instrumentation`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.context import get_current as _current_otel_context
from opentelemetry.trace import Span, get_current_span

try:  # the key OpenTelemetry keeps the active span under (stable since API 1.0)
    from opentelemetry.trace.propagation import _SPAN_KEY as _span_key

    _SPAN_KEY: str | None = _span_key
except ImportError:  # pragma: no cover - a future API without it: the public, slower path
    _SPAN_KEY = None

from obskit import _runtime, contextstack, diagnostics
from obskit.signals import SpanRecord

__all__ = [
    "active_span",
    "app_tracer_provider",
    "call_listeners",
    "capture_failure",
    "exclude_active_span",
    "get_tracer",
    "in_recording_trace",
    "is_failure",
    "record_exception_on_span",
    "request_listeners",
]

_tracer: trace.Tracer | None = None
_tracer_lock = threading.Lock()
_span_processor_added = False
#: The TracerProvider obskit installed, if it installed one (else the app brought its own).
_own_provider: Any = None


def get_tracer() -> trace.Tracer:
    """obskit's tracer, setting up an SDK ``TracerProvider`` on first use if there is none."""
    tracer = _tracer
    return tracer if tracer is not None else setup_tracing()


def setup_tracing() -> trace.Tracer:
    """Use the application's SDK TracerProvider, or install one; attach the pipeline to it."""
    global _tracer, _span_processor_added, _own_provider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    with _tracer_lock:
        settings = _runtime.current().settings
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            attributes: dict[str, Any] = {
                "service.name": settings.service,
                "deployment.environment.name": settings.environment,
            }
            if settings.release:
                attributes["service.version"] = settings.release
            provider = TracerProvider(
                resource=Resource.create(attributes),
                sampler=ParentBased(TraceIdRatioBased(settings.traces_sample_rate)),
            )
            trace.set_tracer_provider(provider)
            if trace.get_tracer_provider() is provider:
                _own_provider = provider
            provider = trace.get_tracer_provider()
        if isinstance(provider, TracerProvider) and not _span_processor_added:
            provider.add_span_processor(PipelineSpanProcessor())  # type: ignore[arg-type]
            _span_processor_added = True
        _tracer = provider.get_tracer("obskit")
        return _tracer


def app_tracer_provider() -> Any:
    """The application's own SDK TracerProvider, or ``None`` (none set, or obskit's)."""
    from opentelemetry.sdk.trace import TracerProvider

    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider) and provider is not _own_provider:
        return provider
    return None


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
            runtime = _runtime.current()
            _runtime.emit(
                SpanRecord(
                    timestamp=start / 1e9,
                    name=span.name,
                    trace_id=format(context.trace_id, "032x"),
                    span_id=format(context.span_id, "016x"),
                    parent_span_id=format(parent.span_id, "016x") if parent else None,
                    duration_ms=(end - start) / 1e6,
                    status=span.status.status_code.name.lower(),
                    attributes=dict(span.attributes or {}),
                    service=runtime.settings.service,
                    span_kind=span.kind.name.lower(),
                    events=[_event_dict(e) for e in span.events] if span.events else [],
                    status_message=span.status.description or "",
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


def _event_dict(event: Any) -> dict[str, Any]:
    return {
        "name": event.name,
        "timestamp": event.timestamp / 1e9,
        "attributes": dict(event.attributes or {}),
    }


_IGNORED = (KeyboardInterrupt, SystemExit, GeneratorExit)

#: Called when an ``@instrument`` call ends, with (name, duration_ms, exception or None), after
#: any capture; must be cheap and never raise (the errors capability adds breadcrumbs here).
call_listeners: list[Callable[[str, float, BaseException | None], None]] = []
#: Called when a ``request()`` scope starts, with (name, fields); each returns a callable run
#: when the scope ends, after any capture (the errors capability scopes breadcrumbs here).
request_listeners: list[Callable[[str, dict[str, Any]], Callable[[], None]]] = []


def is_failure(exc: BaseException | None) -> bool:
    """Whether an exception leaving instrumented code is a failure (not an exit or a cancel)."""
    return (
        exc is not None
        and not isinstance(exc, _IGNORED)
        and type(exc).__name__ != "CancelledError"  # asyncio's and concurrent.futures'
    )


def capture_failure(exc: BaseException, **context: Any) -> None:
    """Report an exception escaping instrumented code once, however many layers it crosses."""
    if not is_failure(exc):
        return
    try:
        if getattr(exc, "__obskit_captured__", False):
            return
        exc.__obskit_captured__ = True  # type: ignore[attr-defined]
    except Exception:
        pass
    try:
        from obskit import errors

        errors.capture_exception(exc, **context)
    except Exception as problem:
        diagnostics.report(
            "capture_failure", f"could not capture {type(exc).__name__}: {problem!r}"
        )


def active_span() -> Span | None:
    """The active OpenTelemetry span, or ``None``: ``get_current_span()`` without its layers.

    Log records and instrumented calls ask on every call, so the lookup is one dict access.
    """
    if _SPAN_KEY is None:
        span = get_current_span()
        return span if span.get_span_context().is_valid else None
    return _current_otel_context().get(_SPAN_KEY)  # type: ignore[return-value]


def in_recording_trace() -> bool:
    """Whether a recording span is active."""
    span = active_span()
    return span is not None and span.is_recording()
