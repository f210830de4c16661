"""``ObskitASGIMiddleware``: every HTTP request of an ASGI 3 app as an ``obskit.request``.

Install it explicitly (nothing is patched at import)::

    app.add_middleware(ObskitASGIMiddleware)        # Starlette, FastAPI
    app = ObskitASGIMiddleware(app)                 # any ASGI 3 app

Per HTTP request: a request id (a valid ``X-Request-ID``, else the trace id of a valid incoming
``traceparent``, else a fresh one; returned in the response's ``X-Request-ID`` unless the app set
one), a server span that continues the caller's W3C trace, the request's context and breadcrumb
trail, the response status, and, when the app returns, the route template as the request's name
(``GET /users/{user_id}``: the span name; ``http.route`` of ``http.server.request.duration``),
then an error event for an exception that
escaped or else for a 5xx response. The timing ends when the app returns, which for a streaming
response is after its last byte (and after any background task Starlette runs after it).

Websocket and lifespan scopes pass through untouched. Bodies are never read. The app's messages,
response and exceptions are passed on as they are; the additions are the ``X-Request-ID``
response header (``response_request_id=False`` turns it off) and ``Connection: close`` on a
5xx response started while an exception propagates (Starlette's answer before it re-raises:
the server closes that connection, and a keep-alive client told so loses no request).

The route template comes from Starlette's ``scope["route"]`` (set by its router, so FastAPI and
Starlette apps get it for free) with the mount prefixes in ``scope["root_path"]``; a request
routed into a mounted app that has no router of its own, or that its router did not match, is
named after the mount (``GET /health/{path}``); a request no route matched at all is named
``GET <unrouted>``. Other frameworks: pass ``route_name=``, a function of the scope returning
the template or ``None``.

Requests to ``exclude_paths`` (default :data:`~obskit.integrations._http.DEFAULT_EXCLUDE_PATHS`:
health probes and metrics scrapes) run untouched: no span, no request metrics, no request
scope; an exception escaping one is still captured. A framework's own server span around such
a request (FastAPI's) is kept out of obskit's exporters too.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, TypeAlias

from obskit import diagnostics, errors, tracing
from obskit.integrations._http import (
    DEFAULT_EXCLUDE_PATHS,
    DEFAULT_RECORD_HEADERS,
    Exchange,
    HTTPOptions,
    handler_culprit,
)

__all__ = ["ObskitASGIMiddleware", "starlette_route"]

_FASTAPI_TELEMETRY = "fastapi.telemetry"

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]


class ObskitASGIMiddleware:
    """ASGI 3 middleware: request scope, span, request id, route-named metrics, error events.

    Options: ``request_id_header`` (read, and written back; default ``X-Request-ID``),
    ``response_request_id`` (write it back), ``record_headers`` (request headers recorded on
    the span and on error events, scrubbed; default user-agent, content-type and
    content-length), ``route_name`` (a function of the scope giving the route template),
    ``capture_server_errors`` (an error event for a 5xx response with no exception) and
    ``exclude_paths`` (paths kept out of request metrics and traces; each matches itself and
    everything under it).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        request_id_header: str = "X-Request-ID",
        response_request_id: bool = True,
        record_headers: Iterable[str] = DEFAULT_RECORD_HEADERS,
        route_name: Callable[[Scope], str | None] | None = None,
        capture_server_errors: bool = True,
        exclude_paths: Iterable[str] = DEFAULT_EXCLUDE_PATHS,
    ) -> None:
        self.app = app
        self.options = HTTPOptions(
            request_id_header=request_id_header,
            response_request_id=response_request_id,
            record_headers=record_headers,
            route_name=route_name,
            capture_server_errors=capture_server_errors,
            exclude_paths=exclude_paths,
        )
        self._wanted = frozenset(name.encode("latin-1") for name in self.options.wanted)
        self._id_header = self.options.request_id_header.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        if _FASTAPI_TELEMETRY not in scope:
            # Wrapped around a FastAPI app (>= 0.142): its telemetry would open a second root
            # server span (it continues the caller's headers, not obskit's span). The key is how
            # FastAPI itself tells a mounted app that the request is already observed.
            scope[_FASTAPI_TELEMETRY] = None
        path = scope.get("path")
        if (
            self.options.exclude_paths
            and (type(path) is not str or path.startswith(self.options.exclude_paths))
            and self._excluded(scope)
        ):
            try:
                await self.app(scope, receive, send)
            except Exception as exc:
                errors.capture_failure(exc)
                raise
            return
        exchange = self._begin(scope, send)
        if exchange is None:
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, exchange.send)
        except BaseException as exc:
            exchange.resolve_from_scope()
            exchange.finish(exc)
            raise
        if exchange.route is None:
            exchange.resolve_from_scope()
        exchange.finish(None)

    def _begin(self, scope: Scope, send: Send) -> _ASGIExchange | None:
        try:
            headers: dict[str, str] = {}
            wanted = self._wanted
            for key, value in scope.get("headers") or ():
                if key in wanted:
                    headers.setdefault(key.decode("latin-1"), value.decode("latin-1"))
            method = scope.get("method", "")
            path = scope.get("path", "")
        except Exception as exc:
            diagnostics.report("asgi_scope", f"could not read an ASGI scope: {exc!r}")
            return None
        try:
            exchange = _ASGIExchange(self.options, method, path, headers)
            exchange.source = scope
            exchange.peek_route = self.options.route_name or starlette_route
            exchange.culprit = _endpoint_culprit
            exchange.app_send = send
            exchange.id_header = self._id_header
            exchange.begin()
            return exchange
        except Exception as exc:
            diagnostics.report("http_begin", f"could not start a request scope: {exc!r}")
            return None

    def _excluded(self, scope: Scope) -> bool:
        try:
            if not self.options.excluded(scope.get("path", "")):
                return False
            tracing.exclude_active_span()  # a framework's own server span for it
            return True
        except Exception as exc:
            diagnostics.report("asgi_scope", f"could not read an ASGI scope: {exc!r}")
            return False


class _ASGIExchange(Exchange):
    """An :class:`Exchange` that also wraps the server's ``send`` (a method, not a closure)."""

    __slots__ = ("app_send", "id_header")

    app_send: Send
    id_header: bytes

    async def send(self, message: Message) -> None:
        """What the app calls as ``send``: notes the response start on the way out."""
        if message.get("type") == "http.response.start":
            message = self._response_start(message)
        await self.app_send(message)

    def _response_start(self, message: Message) -> Message:
        """Note the status and route; add the request id header (to a copy of the message),
        and ``Connection: close`` to an error response sent while an exception propagates."""
        try:
            if self.route is None:
                self.resolve_from_scope()
            self.response_started(message.get("status"))
            headers = None
            if self.options.response_request_id:
                headers = list(message.get("headers") or ())
                name = self.id_header
                for key, _ in headers:  # (a loop, not any(): no generator per response)
                    if key.lower() == name:
                        headers = None
                        break
                else:
                    headers.append((name, self.request.request_id.encode("latin-1")))
            if (self.status or 0) >= 500 and sys.exc_info()[1] is not None:
                # Starlette's ServerErrorMiddleware answers 500 from inside its ``except`` and
                # then re-raises, as ASGI servers expect; uvicorn closes the connection when
                # the exception reaches it. Said here, a keep-alive client opens a new one
                # instead of losing the request it would send on this one meanwhile (with
                # obskit outside that middleware, its capture runs in between).
                headers = _closing(headers if headers is not None else message.get("headers"))
            if headers is not None:
                return {**message, "headers": headers}
        except Exception as exc:
            diagnostics.report("asgi_response", f"could not annotate a response: {exc!r}")
        return message

    def resolve_from_scope(self) -> None:
        """The route template as the router left it in the scope (the first one found wins)."""
        if self.route is not None:
            return
        try:
            self.route = self.peek_route(self.source) or None  # type: ignore[misc]
        except Exception as exc:
            diagnostics.report("asgi_route", f"could not read the route template: {exc!r}")


def _endpoint_culprit(scope: Scope) -> str | None:
    return handler_culprit(scope.get("endpoint"))


def _closing(headers: Iterable[tuple[bytes, bytes]] | None) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``Connection: close`` (replacing a ``Connection`` header it had)."""
    kept = [(key, value) for key, value in headers or () if key.lower() != b"connection"]
    return [*kept, (b"connection", b"close")]


def starlette_route(scope: Scope) -> str | None:
    """The route template Starlette's router left in ``scope``, mount prefixes included.

    A request routed to a mounted app with no router of its own is named after the mount:
    ``/static/{path}``. Mount prefixes come from ``root_path`` as matched, so a mount with
    path parameters shows its values.
    """
    route = scope.get("route")
    root = scope.get("root_path") or ""
    if route is None:
        # FastAPI's router leaves no route for a mount: a root path grown past the app's own
        # (``app_root_path``, set by the mount) says the request went into a mounted app.
        base = scope.get("app_root_path")
        if isinstance(base, str) and len(root) > len(base):
            return f"{root}/{{path}}"
        return None
    if hasattr(route, "routes"):  # a Mount (or Host) whose app did the rest of the routing
        return f"{root}/{{path}}"
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        return None
    return f"{root}{template}"
