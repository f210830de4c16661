"""``@instrument``, ``request()`` and ``timer()``: spans, timing and error capture for app code.

Cost model (as Sentry does with transactions): ``request()`` always opens a span;
``@instrument`` opens a child span only inside a recording trace, so a decorated function called
outside any request costs a duration measurement and a breadcrumb, and nothing else.
"""

from __future__ import annotations

import inspect
import random
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar, overload

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from obskit import contextstack, diagnostics, metrics
from obskit.errors import breadcrumbs, capture_failure
from obskit.listeners import Listeners
from obskit.tracing import (
    active_span,
    get_tracer,
    hex_ids,
    in_recording_trace,
    is_failure,
    mark_span_failed,
)

__all__ = [
    "Request",
    "call_listeners",
    "check_slow",
    "configure",
    "instrument",
    "request",
    "request_listeners",
    "timer",
]

#: Called when an ``@instrument`` call ends, with (name, duration_ms, exception or None), after
#: any capture; must be cheap.
call_listeners: Listeners[Callable[[str, float, BaseException | None], None]] = Listeners(
    "instrumented_call"
)
#: Called when a ``request()`` scope starts, with (name, fields); each returns a callable run
#: when the scope ends, after any capture.
request_listeners: Listeners[Callable[[str, dict[str, Any]], Callable[[], None]]] = Listeners(
    "request"
)
# Breadcrumbs for instrumented calls and request scopes (errors sits below this module).
call_listeners.add(breadcrumbs.on_instrumented_call)
request_listeners.add(breadcrumbs.on_request)

F = TypeVar("F", bound=Callable[..., Any])

#: Built-in series (obskit's own names: no semantic convention covers these scopes).
function_duration = metrics.histogram(
    "obskit.function.duration", "s", "duration of @obskit.instrument calls"
)
request_duration = metrics.histogram(
    "obskit.request.duration", "s", "duration of obskit.request scopes (not HTTP ones)"
)
#: Defaults from ``obskit.init``: ``slow_ms`` (None: no threshold), ``slow_capture`` and
#: ``instrument_root``; each call's own argument wins.
defaults: dict[str, Any] = {"slow_ms": None, "slow_capture": False, "instrument_root": False}
_slow_log: Any = None


def configure(*, slow_ms: float | None, slow_capture: bool, instrument_root: bool) -> None:
    """Set the defaults (``obskit.init`` calls this)."""
    defaults.update(slow_ms=slow_ms, slow_capture=slow_capture, instrument_root=instrument_root)


def check_slow(
    kind: str,
    name: str,
    elapsed_ms: float,
    slow_ms: float | None,
    *,
    capture: bool | None = None,
    fields: dict[str, Any] | None = None,
) -> None:
    """Warn (one log record, so one breadcrumb) if a ``kind`` call took ``slow_ms`` or more.

    ``slow_ms=None`` uses the ``slow_ms`` setting. With ``capture`` (default: the
    ``slow_capture`` setting) the slow call is also an event, one group per call site.
    """
    threshold = slow_ms if slow_ms is not None else defaults["slow_ms"]
    if threshold is None or elapsed_ms < threshold:
        return
    try:
        _report_slow(kind, name, elapsed_ms, threshold, capture, fields)
    except Exception as exc:
        diagnostics.report("slow_call", f"could not report a slow call: {exc!r}")


def _report_slow(
    kind: str,
    name: str,
    elapsed_ms: float,
    threshold: float,
    capture: bool | None,
    fields: dict[str, Any] | None,
) -> None:
    global _slow_log
    if _slow_log is None:
        from obskit.logging import get_logger

        _slow_log = get_logger("obskit.slow")
    details = {kind: name, "duration_ms": round(elapsed_ms, 3), "threshold_ms": threshold}
    if fields:
        details.update(fields)
    _slow_log.warning(f"slow {kind}: {name}", **details)
    if capture if capture is not None else defaults["slow_capture"]:
        from obskit import errors

        errors.capture_message(
            f"slow {kind}: {name}",
            level="warning",
            fingerprint=["obskit.slow", kind, name],
            culprit=name,
            slow=details,
        )


def _attributes_for(fn: Callable[..., Any], base: dict[str, Any] | None) -> dict[str, Any]:
    code = getattr(fn, "__code__", None)
    attributes = {
        "code.function.name": getattr(fn, "__qualname__", repr(fn)),
        "code.namespace": getattr(fn, "__module__", "") or "",
    }
    if code is not None:
        attributes["code.file.path"] = code.co_filename
        attributes["code.line.number"] = code.co_firstlineno
    attributes.update(base or {})
    return attributes


def _arg_attributes(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    from obskit.scrubbing import safe_repr

    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs)
        return {f"code.arg.{k}": safe_repr(v, 256) for k, v in bound.arguments.items()}
    except Exception:
        return {}


def _call_ended(
    name: str,
    elapsed_ms: float,
    exc: BaseException | None,
    slow_ms: float | None = None,
    slow_capture: bool | None = None,
) -> None:
    """What every instrumented call does when it ends: capture, metrics, listeners, slowness."""
    failed = is_failure(exc)
    if failed and exc is not None:
        capture_failure(exc)
        function_duration.record(
            elapsed_ms / 1000.0, function=name, **{"error.type": type(exc).__qualname__}
        )
    else:
        function_duration.record(elapsed_ms / 1000.0, function=name)
    if call_listeners.callbacks:
        call_listeners.notify(name, elapsed_ms, exc)
    check_slow("function", name, elapsed_ms, slow_ms, capture=slow_capture)


AttributesFor = Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any]]


class _Call:
    """One instrumented call: a child span when inside a recording trace, and the timing."""

    __slots__ = ("name", "options", "scope", "span", "start")

    def __init__(
        self,
        name: str,
        attributes: AttributesFor,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: _Options,
    ) -> None:
        self.name = name
        self.options = options
        self.span: Span | None = None
        self.scope: Any = None
        if in_recording_trace() or options.opens_root():  # attributes only for a span
            self.span = get_tracer().start_span(name, attributes=attributes(args, kwargs))
            # A context token, not trace.use_span's generator (see Request.__enter__).
            self.scope = otel_context.attach(trace.set_span_in_context(self.span))
        self.start = time.perf_counter()

    def end(self, exc: BaseException | None) -> None:
        elapsed_ms = (time.perf_counter() - self.start) * 1000.0
        span = self.span
        if span is not None:
            if exc is not None and is_failure(exc):
                capture_failure(exc)  # first, so the span's exception event has the fingerprint
                mark_span_failed(span, exc)
            try:
                otel_context.detach(self.scope)
            finally:
                span.end()
        options = self.options
        _call_ended(self.name, elapsed_ms, exc, options.slow_ms, options.slow_capture)


class _Options:
    """What an ``@instrument`` decoration asked for beyond its name and attributes."""

    __slots__ = ("root", "slow_capture", "slow_ms")

    def __init__(self, slow_ms: float | None, slow_capture: bool | None, root: bool | None):
        if slow_ms is not None and not (isinstance(slow_ms, (int, float)) and slow_ms >= 0):
            from obskit.diagnostics import ConfigError

            raise ConfigError(f"slow_ms must be a number of milliseconds >= 0, got {slow_ms!r}")
        self.slow_ms = slow_ms
        self.slow_capture = slow_capture
        self.root = root

    def opens_root(self) -> bool:
        """Whether to open a root span here: asked for, and no trace is active."""
        root = self.root if self.root is not None else defaults["instrument_root"]
        return bool(root) and active_span() is None


@overload
def instrument(fn: F, /) -> F: ...


@overload
def instrument(
    *,
    name: str | None = None,
    attributes: dict[str, Any] | None = None,
    record_args: bool = False,
    slow_ms: float | None = None,
    slow_capture: bool | None = None,
    root: bool | None = None,
    tags: dict[str, Any] | None = None,
) -> Callable[[F], F]: ...


def instrument(
    fn: Any = None,
    /,
    *,
    name: str | None = None,
    attributes: dict[str, Any] | None = None,
    record_args: bool = False,
    slow_ms: float | None = None,
    slow_capture: bool | None = None,
    root: bool | None = None,
    tags: dict[str, Any] | None = None,
) -> Any:
    """Time a function, trace it inside a request, and capture exceptions it raises.

    Works on functions, methods, async functions, generators and async generators, with or
    without arguments (``@instrument`` or ``@instrument(name="charge")``). Exceptions are
    re-raised unchanged. ``slow_ms``: a call taking that long or longer logs one warning
    (``slow_capture=True``: and an event grouped per function); default the ``slow_ms``
    setting. ``root=True`` (default the ``instrument_root`` setting) opens a root span when no
    trace is active, for jobs and scripts. ``tags`` go on the span as attributes.
    """
    options = _Options(slow_ms, slow_capture, root)
    static_attributes = {**(attributes or {}), **(tags or {})}
    if fn is None:
        return lambda f: _decorate(f, name, static_attributes, record_args, options)
    return _decorate(fn, name, static_attributes, record_args, options)


def _decorate(
    fn: Any,
    name: str | None,
    attributes: dict[str, Any] | None,
    record_args: bool,
    options: _Options,
) -> Any:
    if not callable(fn):
        raise TypeError(f"@instrument needs a function, got {fn!r}")
    span_name = name or getattr(fn, "__qualname__", None) or repr(fn)
    static = _attributes_for(fn, attributes)
    slow_ms, slow_capture = options.slow_ms, options.slow_capture

    def attrs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        return {**static, **_arg_attributes(fn, args, kwargs)} if record_args else static

    if inspect.isasyncgenfunction(fn):

        @wrapt.decorator
        async def async_gen_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            call = _Call(span_name, attrs, args, kwargs, options)
            try:
                async for item in wrapped(*args, **kwargs):
                    yield item
            except BaseException as exc:
                call.end(exc)
                raise
            call.end(None)

        return async_gen_wrapper(fn)

    if inspect.iscoroutinefunction(fn):

        @wrapt.decorator
        async def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            call = _Call(span_name, attrs, args, kwargs, options)
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:
                call.end(exc)
                raise
            call.end(None)
            return result

        return async_wrapper(fn)

    if inspect.isgeneratorfunction(fn):

        @wrapt.decorator
        def gen_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            call = _Call(span_name, attrs, args, kwargs, options)
            try:
                result = yield from wrapped(*args, **kwargs)
            except BaseException as exc:
                call.end(exc)
                raise
            call.end(None)
            return result

        return gen_wrapper(fn)

    @wrapt.decorator
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if in_recording_trace() or options.opens_root():
            call = _Call(span_name, attrs, args, kwargs, options)
            try:
                result = wrapped(*args, **kwargs)
            except BaseException as exc:
                call.end(exc)
                raise
            call.end(None)
            return result
        # Outside a trace (the hot path): no span, no object, just the timing.
        start = time.perf_counter()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            elapsed_ms = (time.perf_counter() - start) * 1000.0
            _call_ended(span_name, elapsed_ms, exc, slow_ms, slow_capture)
            raise
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        function_duration.record(elapsed_ms / 1000.0, function=span_name)
        for listener in call_listeners.callbacks:  # _call_ended's success path, inlined
            try:
                listener(span_name, elapsed_ms, None)
            except Exception as problem:
                call_listeners.report(listener, problem)
        threshold = slow_ms if slow_ms is not None else defaults["slow_ms"]
        if threshold is not None and elapsed_ms >= threshold:
            check_slow("function", span_name, elapsed_ms, threshold, capture=slow_capture)
        return result

    return wrapper(fn)


class Request:
    """A request scope: request id and fields in the context, a span, timing, error capture.

    Use as ``with obskit.request("POST /checkout", method="POST") as req:`` (or ``async with``).
    ``req.request_id``, ``req.trace_id`` and, after exit, ``req.duration_ms`` are available;
    ``req.set_status(code)`` records an HTTP status (5xx marks the request failed).
    Before entering, ``req.continue_trace(headers)`` makes the span continue a caller's W3C
    trace (``req.parent_context`` is the OpenTelemetry context it starts in; ``None``: the
    current one) and ``req.span_kind`` sets the span's kind; ``req.rename(name)`` names it once
    more is known (a route template after routing), for the span and request metrics alike.

    On exit (inside its span, so a sampled request leaves an exemplar) the duration goes to
    ``duration_metric`` with ``metric_labels``: ``obskit.request.duration`` {name, error.type}
    unless an integration set another (HTTP servers: ``http.server.request.duration``).
    """

    def __init__(
        self,
        name: str,
        request_id: str | None = None,
        *,
        slow_ms: float | None = None,
        slow_capture: bool | None = None,
        tags: dict[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        self.name = name
        self.slow_ms = slow_ms
        self.slow_capture = slow_capture
        self.tags = tags
        # 128 random bits like uuid4's, without its os.urandom system call per request
        self.request_id = request_id or f"{random.getrandbits(128):032x}"
        self.fields = fields
        self.status_code: int | None = None
        self.duration_ms: float | None = None
        self.span: Span | None = None
        self.trace_id: str | None = None
        self._scope: contextstack.ScopeToken | None = None
        self._span_scope: Any = None
        self._on_exit: list[Callable[[], None]] = []
        self._start = 0.0
        self.parent_context: Any = None
        self.span_kind = SpanKind.INTERNAL
        self.duration_metric: metrics.Histogram = request_duration
        self.metric_labels: dict[str, Any] | None = None
        #: The span's attributes at its start, instead of the fields (one lock round trip).
        self.span_attributes: dict[str, Any] | None = None
        self._pending: dict[str, Any] = {}
        self.joined = False
        #: A source of fields known only part-way through (see contextstack.set_late_fields).
        self.late_fields: Callable[[], Mapping[str, Any]] | None = None

    def join(self, span: Span) -> None:
        """Before entering: use ``span`` (already active, owned by someone else) as this
        request's span instead of starting one. It is annotated and renamed, never ended."""
        self.span = span
        self.joined = True

    def continue_trace(self, carrier: Mapping[str, str]) -> bool:
        """Continue the W3C trace in ``carrier`` (``traceparent``, ``tracestate``) on entering.

        Malformed, oversized or control-character values are ignored (the request starts a
        fresh trace). Returns whether a valid parent was found.

        >>> req = request("job")
        >>> req.continue_trace({"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"})
        True
        >>> req.continue_trace({"traceparent": "00-not-a-trace"})
        False
        """
        from obskit.propagation import extract

        parent = extract(carrier)
        self.parent_context = parent
        return parent is not None

    def rename(self, name: str) -> None:
        """Name the request (span and request metrics) now that more is known about it."""
        self.name = name
        try:
            if self.span is not None and self.span.is_recording():
                self.span.update_name(name)
        except Exception as exc:
            diagnostics.report("request_span", f"could not rename a request span: {exc!r}")

    def set_status(self, code: int) -> None:
        self.status_code = code
        self.set_attribute("http.response.status_code", code)

    def set_attribute(self, key: str, value: Any) -> None:
        """Set a span attribute (applied with the others when the request ends, in one go)."""
        span = self.span
        if span is None:
            return
        if self.joined:  # its owner may end it any time: now
            if span.is_recording():
                span.set_attribute(key, value)
            return
        self._pending[key] = value

    def __enter__(self) -> Request:
        try:
            if self.span_attributes is not None:  # the caller named them (the HTTP middleware)
                attributes = dict(self.span_attributes)
            else:
                attributes = {
                    k: v for k, v in self.fields.items() if isinstance(v, (str, bool, int, float))
                }
            attributes["request.id"] = self.request_id
            if self.tags:  # the request's own tags win over the scope's on its span
                attributes.update(
                    {k: v for k, v in self.tags.items() if isinstance(v, (str, bool, int, float))}
                )
            if self.joined and self.span is not None:
                self.span.set_attributes(attributes)
            else:
                self.span = get_tracer().start_span(
                    self.name,
                    context=self.parent_context,
                    kind=self.span_kind,
                    attributes=attributes,
                )
                # A context token, not trace.use_span's generator: a request abandoned
                # unfinished (a WSGI response never closed) is then garbage, not a detach
                # error at collection.
                self._span_scope = otel_context.attach(trace.set_span_in_context(self.span))
            context = self.span.get_span_context()
            if context.is_valid:
                self.trace_id = hex_ids(context)[0]
        except Exception as exc:
            diagnostics.report("request_span", f"could not start a request span: {exc!r}")
        self._scope = contextstack.enter(
            {"request_id": self.request_id, **self.fields}, self.tags, self.late_fields
        )
        self._on_exit = []
        for listener in request_listeners.callbacks:
            try:
                fields = {**self.fields, "request_id": self.request_id}
                self._on_exit.append(listener(self.name, fields))
            except Exception as exc:
                request_listeners.report(listener, exc)
        self._start = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.duration_ms = (time.perf_counter() - self._start) * 1000.0
        failed = is_failure(exc)
        if failed and exc is not None:
            capture_failure(exc)
        server_error = self.status_code is not None and self.status_code >= 500
        self._record_duration(exc if failed else None, server_error)
        try:
            span = self.span
            if span is not None and (not self.joined or span.is_recording()):
                if self._pending:
                    span.set_attributes(self._pending)
                if failed and exc is not None:
                    mark_span_failed(span, exc)
                elif server_error:
                    mark_span_failed(span, why=f"HTTP {self.status_code}")
                if not self.joined:  # a joined span is ended by its owner
                    otel_context.detach(self._span_scope)
                    span.end()
        except Exception as problem:
            diagnostics.report("request_span", f"could not end a request span: {problem!r}")
        for end_listener in reversed(self._on_exit):
            try:
                end_listener()
            except Exception as problem:
                request_listeners.report(end_listener, problem)
        if self._scope is not None:
            contextstack.leave(self._scope)
        # What referred back to the caller (an HTTP exchange's late fields, its end listeners,
        # context tokens) goes: a finished request leaves no reference cycle for the garbage
        # collector to find.
        self._scope = self._span_scope = self.late_fields = None
        self._on_exit = []
        threshold = self.slow_ms if self.slow_ms is not None else defaults["slow_ms"]
        if threshold is not None and self.duration_ms >= threshold:  # (check_slow's test first)
            check_slow(
                "request",
                self.name,
                self.duration_ms,
                threshold,
                capture=self.slow_capture,
                fields={"request_id": self.request_id},
            )

    def _record_duration(self, exc: BaseException | None, server_error: bool) -> None:
        labels = self.metric_labels
        if labels is None:
            labels = {"name": self.name}
        if exc is not None:
            labels["error.type"] = type(exc).__qualname__
        elif server_error:
            labels["error.type"] = str(self.status_code)
        self.duration_metric.record((self.duration_ms or 0.0) / 1000.0, **labels)

    async def __aenter__(self) -> Request:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def request(
    name: str,
    request_id: str | None = None,
    *,
    slow_ms: float | None = None,
    slow_capture: bool | None = None,
    tags: dict[str, Any] | None = None,
    **fields: Any,
) -> Request:
    """Open a request scope (sync or async context manager). See :class:`Request`.

    ``slow_ms``/``slow_capture`` as for :func:`instrument`; ``tags`` are scoped to the request
    (error events and spans inside it carry them).
    """
    return Request(
        name, request_id, slow_ms=slow_ms, slow_capture=slow_capture, tags=tags, **fields
    )


class timer:
    """Measure a block or a function; the seconds go to the histogram ``name`` (unit ``s``,
    declared on first use) with ``labels``.

    ``slow_ms``: a run taking that long or longer logs one warning (default: the ``slow_ms``
    setting).

    >>> with timer("doc.startup") as t:
    ...     time.sleep(0.01)
    >>> 10 <= t.elapsed_ms < 10_000
    True
    """

    __slots__ = ("_start", "elapsed_ms", "labels", "name", "slow_ms")

    def __init__(self, name: str, *, slow_ms: float | None = None, **labels: Any) -> None:
        self.name = name
        self.labels = labels
        self.slow_ms = slow_ms
        self.elapsed_ms: float = 0.0
        self._start = 0.0

    def __enter__(self) -> timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed_ms = (time.perf_counter() - self._start) * 1000.0
        histogram = metrics.STORE.instruments.get(self.name)
        if histogram is None:
            histogram = metrics.STORE.declare("histogram", self.name, unit="s", strict=False)
        histogram.record_at(self.elapsed_ms / 1000.0, self.labels, None)
        check_slow("block", self.name, self.elapsed_ms, self.slow_ms)

    def __call__(self, fn: F) -> F:
        name, labels, slow_ms = self.name, self.labels, self.slow_ms

        @wrapt.decorator
        def timed(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            with timer(name, slow_ms=slow_ms, **labels):
                return wrapped(*args, **kwargs)

        return timed(fn)  # type: ignore[no-any-return,return-value]
