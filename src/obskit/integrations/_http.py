"""What the ASGI and WSGI middleware share: one incoming HTTP request as an ``obskit.request``.

An :class:`Exchange` reads the few headers it needs (request id, ``traceparent``, the headers
chosen for recording), opens the request scope, notes the response status and the route
template as the framework reveals them, and at the end names the request after its route,
captures an error event (an exception that escaped, else a 5xx response grouped by route with
the handler as culprit), records ``http.server.request.duration`` and closes the scope.

While the request runs, every log record and error event carries ``http.route`` as soon as the
framework has routed (read when the record is made). When a server span is already active (a
framework's own telemetry, FastAPI's since 0.142, or OpenTelemetry's ASGI middleware outside
obskit's), the request joins it instead of opening a second one: one server span per request.
Paths in ``exclude_paths`` (health probes, metrics scrapes) skip all of this.
Nothing here raises into the application: failures go to :func:`obskit.diagnostics.report`.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from obskit import (
    _runtime,
    diagnostics,
    errors,
    instrumentation,
    metrics,
    propagation,
    tracing,
)
from obskit.diagnostics import ConfigError
from obskit.scrubbing import FILTERED, Scrubber

__all__ = [
    "DEFAULT_EXCLUDE_PATHS",
    "DEFAULT_RECORD_HEADERS",
    "UNROUTED",
    "Exchange",
    "HTTPOptions",
    "handler_culprit",
    "safe_method",
    "valid_request_id",
]

#: The route part of the name of a request no route template matched (404s, bare apps).
UNROUTED = "<unrouted>"

#: Request headers recorded on the span and on error events unless told otherwise.
DEFAULT_RECORD_HEADERS = ("user-agent", "content-type", "content-length")
#: Paths kept out of request metrics and traces unless told otherwise: health probes and
#: metrics scrapes (each entry matches itself and everything under it).
DEFAULT_EXCLUDE_PATHS = ("/health", "/healthz", "/livez", "/readyz", "/metrics")
#: The request-duration histogram (OpenTelemetry's HTTP semantic conventions; seconds).
DURATION_METRIC = "http.server.request.duration"
server_duration = metrics.histogram(DURATION_METRIC, "s", "Duration of HTTP server requests.")
#: Methods kept as they are; anything else is ``_OTHER`` (a client picks the method: keep
#: span names and metric labels low-cardinality, as OpenTelemetry's conventions do).
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=@/-]{0,127}")
_MAX_HEADER = 1024
_SERVER = SpanKind.SERVER  # (an enum member lookup costs more than a global's)
_MAX_PATH = 2048


def valid_request_id(value: Any) -> str | None:
    """``value`` if it is a usable request id (1-128 safe ASCII characters), else ``None``.

    >>> valid_request_id("req-42"), valid_request_id("x" * 200), valid_request_id("a\\nb")
    ('req-42', None, None)
    """
    if isinstance(value, str) and _REQUEST_ID.fullmatch(value):
        return value
    return None


def safe_method(method: Any) -> str:
    """The HTTP method for names and labels: a standard one, else ``_OTHER``."""
    return method if method in KNOWN_METHODS else "_OTHER"


class HTTPOptions:
    """The middleware's settings, checked once when it is installed."""

    __slots__ = (
        "capture_server_errors",
        "exclude_paths",
        "record_headers",
        "request_id_header",
        "response_request_id",
        "route_name",
        "wanted",
    )

    def __init__(
        self,
        *,
        request_id_header: str = "X-Request-ID",
        response_request_id: bool = True,
        record_headers: Iterable[str] = DEFAULT_RECORD_HEADERS,
        route_name: Callable[[Any], str | None] | None = None,
        capture_server_errors: bool = True,
        exclude_paths: Iterable[str] = DEFAULT_EXCLUDE_PATHS,
    ) -> None:
        if not isinstance(request_id_header, str) or not request_id_header:
            raise ConfigError("request_id_header must be a header name, e.g. 'X-Request-ID'")
        if isinstance(record_headers, str):
            raise ConfigError("record_headers takes a list of header names, not one string")
        if route_name is not None and not callable(route_name):
            raise ConfigError("route_name must be a function of the scope/environ, or None")
        self.request_id_header = request_id_header.lower()
        self.response_request_id = bool(response_request_id)
        self.record_headers = tuple(str(name).lower() for name in record_headers)
        self.route_name = route_name
        self.capture_server_errors = bool(capture_server_errors)
        self.wanted = frozenset(
            {self.request_id_header, "traceparent", "tracestate", *self.record_headers}
        )
        self.exclude_paths = _checked_paths(exclude_paths)

    def excluded(self, path: str) -> bool:
        """Whether ``path`` is one of ``exclude_paths`` or under one.

        >>> HTTPOptions().excluded("/health/ready"), HTTPOptions().excluded("/healthy")
        (True, False)
        """
        if not path.startswith(self.exclude_paths):  # one call for the usual answer
            return False
        for prefix in self.exclude_paths:
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
                return True
        return False


def _checked_paths(paths: Iterable[str]) -> tuple[str, ...]:
    if isinstance(paths, str):
        raise ConfigError("exclude_paths takes a list of paths, e.g. ['/health', '/metrics']")
    out = []
    for path in paths:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigError(f"exclude_paths entries are paths starting with '/', got {path!r}")
        out.append(path.rstrip("/") or "/")
    return tuple(out)


class Exchange:
    """One incoming request: its ``obskit.request`` scope, status, route and error capture."""

    __slots__ = (
        "__weakref__",
        "captured",
        "culprit",
        "done",
        "headers",
        "method",
        "options",
        "peek_route",
        "request",
        "route",
        "source",
        "status",
    )

    def __init__(
        self, options: HTTPOptions, method: str, path: str, headers: Mapping[str, str]
    ) -> None:
        self.options = options
        self.method = method if method in KNOWN_METHODS else "_OTHER"  # (safe_method)
        self.route: str | None = None
        self.status: int | None = None
        self.captured = False
        self.done = False
        #: The framework's request (ASGI scope, WSGI environ, Django request): what
        #: ``peek_route`` and ``culprit`` read.
        self.source: Any = None
        #: The route template as the framework has it so far (while the app runs), or None.
        self.peek_route: Callable[[Any], str | None] | None = None
        #: ``module in function`` of the handler, for a 5xx response with no exception.
        self.culprit: Callable[[Any], str | None] | None = None
        request_id = headers.get(options.request_id_header)
        if request_id is not None:
            request_id = valid_request_id(request_id)
        parent = propagation.extract(headers) if "traceparent" in headers else None
        if request_id is None and parent is not None:
            request_id = format(trace.get_current_span(parent).get_span_context().trace_id, "032x")
        # Named after the method until the route is known; renamed in finish().
        path = path if len(path) <= _MAX_PATH else path[:_MAX_PATH]  # the client chose it
        self.request = instrumentation.Request(
            self.method, request_id, method=self.method, path=path
        )
        # a recording server span some other instrumentation opened around obskit, or None
        server = tracing.active_span()
        if server is not None and (
            getattr(server, "kind", None) is not _SERVER or not server.is_recording()
        ):
            server = None
        if server is not None:  # a framework's own server span: join it, never a second root
            self.request.join(server)
            if request_id is None:
                self.request.request_id = format(server.get_span_context().trace_id, "032x")
        self.request.parent_context = parent
        self.request.span_kind = _SERVER
        self.request.duration_metric = server_duration
        scrubber = _runtime.current().pipeline.scrubber
        if request_id is None:  # hex made here (random, or a trace id): it holds no secret
            scrubber.trust(self.request.request_id)
        self.headers = _recorded(scrubber, options.record_headers, headers)
        attributes: dict[str, Any] = {"http.request.method": self.method, "url.path": path}
        for name, value in self.headers.items():
            attributes[f"http.request.header.{name}"] = value
        self.request.span_attributes = attributes

    def begin(self) -> Exchange:
        """Enter the request scope (in the context the app will run in)."""
        self.request.late_fields = _LateFields(self)
        self.request.__enter__()
        return self

    def late_fields(self) -> dict[str, Any]:
        """``http.route`` for records made inside the request, once it is routed."""
        route = self.route
        if route is None and self.peek_route is not None:
            route = self.peek_route(self.source)
        return {"http.route": route} if route else {}

    @property
    def request_id(self) -> str:
        return self.request.request_id

    def response_started(self, status: Any) -> None:
        """The app started its response with ``status`` (call after resolving the route)."""
        try:
            self.status = int(status)
            self.request.set_status(self.status)
            if self.request.joined:  # its owner may end it with the last byte: name it now
                self._name()
        except Exception as exc:
            diagnostics.report("http_status", f"could not record a response status: {exc!r}")

    def _name(self) -> None:
        self.request.rename(f"{self.method} {self.route or UNROUTED}")
        if self.route:
            self.request.set_attribute("http.route", self.route)

    def resolve(self, route: str | None) -> None:
        """The route template, once the framework has routed (the first one found wins)."""
        if self.route is None and route:
            self.route = route

    def context(self) -> dict[str, Any]:
        """What error events of this request carry under ``http``."""
        out: dict[str, Any] = {"method": self.method, "route": self.route or UNROUTED}
        if self.status is not None:
            out["status_code"] = self.status
        if self.headers:
            out["headers"] = self.headers
        return out

    def capture(self, exc: BaseException) -> None:
        """Capture an exception the framework handled itself (e.g. Flask's 500 handler)."""
        self.captured = True
        errors.capture_failure(exc, http=self.context())

    def finish(self, exc: BaseException | None) -> None:
        """Name the request after its route, capture what failed, close the scope. Once."""
        if self.done:
            return
        self.done = True
        request = self.request
        # the exception, unless it is a cancellation or an exit
        failure = exc if exc is not None and tracing.is_failure(exc) else None
        try:
            self._name()
            # http.server.request.duration's labels, as OpenTelemetry's conventions name them
            # (the request adds error.type and records it inside its span, for the exemplar)
            labels: dict[str, Any] = {"http.request.method": self.method}
            if self.route:
                labels["http.route"] = self.route
            if self.status is not None:
                labels["http.response.status_code"] = self.status
            request.metric_labels = labels
            if failure is not None:
                self.capture(failure)
            elif self.options.capture_server_errors and not self.captured:
                status = self.status or 0
                if status >= 500:
                    self._capture_server_error(status)
            if exc is not None and failure is None:
                request.set_attribute("http.request.cancelled", True)
        except Exception as problem:
            diagnostics.report("http_finish", f"could not finish a request: {problem!r}")
        try:
            request.__exit__(type(failure) if failure else None, failure, None)
        except Exception as problem:
            diagnostics.report("http_finish", f"could not close a request scope: {problem!r}")

    def _capture_server_error(self, status: int) -> None:
        """One event per route and status, the handler as culprit (no stack: none escaped)."""
        name = self.request.name
        culprit = self.culprit(self.source) if self.culprit is not None else None
        errors.capture_message(
            f"HTTP {status} {name}",
            level="error",
            fingerprint=["http.server.error", name, str(status)],
            culprit=culprit or name,
            http=self.context(),
        )


class _LateFields:
    """An exchange's :meth:`Exchange.late_fields`, held weakly.

    The request's context keeps it, and servers copy that context into what they schedule
    from inside the request (uvicorn's keep-alive timer, with the connection's last
    response): held strongly, the exchange, its request and everything they refer to would
    live on per idle connection, for the garbage collector to walk again and again.
    """

    __slots__ = ("_exchange",)

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = weakref.ref(exchange)

    def __call__(self) -> dict[str, Any]:
        exchange = self._exchange()
        return exchange.late_fields() if exchange is not None else {}


def handler_culprit(handler: Any) -> str | None:
    """``module in function`` of a request handler (how error events name a culprit)."""
    handler = getattr(handler, "__wrapped__", handler)
    qualname = getattr(handler, "__qualname__", None) or getattr(
        type(handler), "__qualname__", None
    )
    if not isinstance(qualname, str):
        return None
    module = getattr(handler, "__module__", None) or type(handler).__module__
    return f"{module} in {qualname}"


def _recorded(
    scrubber: Scrubber, names: tuple[str, ...], headers: Mapping[str, str]
) -> dict[str, str]:
    """The recorded headers, scrubbed here (spans may go to the app's own exporters)."""
    out: dict[str, str] = {}
    for name in names:
        value = headers.get(name)
        if value is None:
            continue
        if scrubber.is_denied_key(name):
            out[name] = FILTERED
        else:
            value = value[:_MAX_HEADER]
            clean = scrubber.text_cache.get(value)
            out[name] = scrubber.clean_text(value) if clean is None else clean
    return out


def begin(
    options: HTTPOptions, method: str, path: str, headers: Mapping[str, str]
) -> Exchange | None:
    """A started :class:`Exchange`, or ``None`` if obskit failed (the app then runs bare)."""
    try:
        return Exchange(options, method, path, headers).begin()
    except Exception as exc:
        diagnostics.report("http_begin", f"could not start a request scope: {exc!r}")
        return None
