"""What the ASGI and WSGI middleware share: one incoming HTTP request as an ``obskit.request``.

An :class:`Exchange` reads the few headers it needs (request id, ``traceparent``, the headers
chosen for recording), opens the request scope, notes the response status and the route
template as the framework reveals them, and at the end names the request after its route,
captures an error event (an exception that escaped, else a 5xx response) and closes the scope.
Nothing here raises into the application: failures go to :func:`obskit.diagnostics.report`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from obskit import _runtime, diagnostics, errors, instrumentation, propagation, tracing
from obskit.diagnostics import ConfigError
from obskit.scrubbing import FILTERED

__all__ = [
    "DEFAULT_RECORD_HEADERS",
    "UNROUTED",
    "Exchange",
    "HTTPOptions",
    "safe_method",
    "valid_request_id",
]

#: The route part of the name of a request no route template matched (404s, bare apps).
UNROUTED = "<unrouted>"
#: Request headers recorded on the span and on error events unless told otherwise.
DEFAULT_RECORD_HEADERS = ("user-agent", "content-type", "content-length")
#: Methods kept as they are; anything else is ``_OTHER`` (a client picks the method: keep
#: span names and metric labels low-cardinality, as OpenTelemetry's conventions do).
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=@/-]{0,127}")
_MAX_HEADER = 1024
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


class Exchange:
    """One incoming request: its ``obskit.request`` scope, status, route and error capture."""

    __slots__ = (
        "captured",
        "done",
        "headers",
        "method",
        "options",
        "request",
        "route",
        "status",
    )

    def __init__(
        self, options: HTTPOptions, method: str, path: str, headers: Mapping[str, str]
    ) -> None:
        self.options = options
        self.method = safe_method(method)
        self.route: str | None = None
        self.status: int | None = None
        self.captured = False
        self.done = False
        request_id = valid_request_id(headers.get(options.request_id_header))
        parent = propagation.extract(headers) if "traceparent" in headers else None
        if request_id is None and parent is not None:
            request_id = format(trace.get_current_span(parent).get_span_context().trace_id, "032x")
        # Named after the method until the route is known; renamed in finish().
        path = path if len(path) <= _MAX_PATH else path[:_MAX_PATH]  # the client chose it
        self.request = instrumentation.Request(
            self.method, request_id, method=self.method, path=path
        )
        self.request.parent_context = parent
        self.request.span_kind = SpanKind.SERVER
        self.headers = _recorded(options.record_headers, headers)

    def begin(self) -> Exchange:
        """Enter the request scope (in the context the app will run in)."""
        request = self.request.__enter__()
        try:
            span = request.span
            if span is not None and span.is_recording():
                attributes = {
                    "http.request.method": self.method,
                    "url.path": request.fields["path"],
                }
                for name, value in self.headers.items():
                    attributes[f"http.request.header.{name}"] = value
                span.set_attributes(attributes)  # one lock round trip, not one per attribute
        except Exception as exc:
            diagnostics.report("http_begin", f"could not annotate a request span: {exc!r}")
        return self

    @property
    def request_id(self) -> str:
        return self.request.request_id

    def response_started(self, status: Any) -> None:
        """The app started its response with ``status``."""
        try:
            self.status = int(status)
            self.request.set_status(self.status)
        except Exception as exc:
            diagnostics.report("http_status", f"could not record a response status: {exc!r}")

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
        failure = exc if tracing.is_failure(exc) else None  # not a cancellation or exit
        try:
            request.rename(f"{self.method} {self.route or UNROUTED}")
            if self.route:
                request.set_attribute("http.route", self.route)
            if failure is not None:
                self.capture(failure)
            elif self.options.capture_server_errors and not self.captured:
                status = self.status or 0
                if status >= 500:
                    errors.capture_message(
                        f"HTTP {status} {request.name}", level="error", http=self.context()
                    )
            if exc is not None and failure is None:
                request.set_attribute("http.request.cancelled", True)
        except Exception as problem:
            diagnostics.report("http_finish", f"could not finish a request: {problem!r}")
        try:
            request.__exit__(type(failure) if failure else None, failure, None)
        except Exception as problem:
            diagnostics.report("http_finish", f"could not close a request scope: {problem!r}")


def _recorded(names: tuple[str, ...], headers: Mapping[str, str]) -> dict[str, str]:
    """The recorded headers, scrubbed here (spans may go to the app's own exporters)."""
    if not names:
        return {}
    scrubber = None
    out: dict[str, str] = {}
    for name in names:
        value = headers.get(name)
        if value is None:
            continue
        if scrubber is None:
            scrubber = _runtime.current().pipeline.scrubber
        if scrubber.is_denied_key(name):
            out[name] = FILTERED
        else:
            out[name] = scrubber.clean_text(value[:_MAX_HEADER])
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
