"""``ObskitWSGIMiddleware``: every request of a WSGI app as an ``obskit.request``.

Install it explicitly::

    app.wsgi_app = ObskitWSGIMiddleware(app.wsgi_app)      # Flask
    application = ObskitWSGIMiddleware(get_wsgi_application())   # Django, any WSGI app

The same behaviour as :mod:`obskit.integrations.asgi` (request id, trace continuation, route
template as the name, error event for an escaping exception or a 5xx response), with what WSGI
needs on top:

* Each request runs in a :class:`contextvars.Context` of its own, entered for the app call and
  for every step of the response iterable, so the server thread's context is never changed: a
  server that never finishes a response cannot leak one request's scope into the next.
* The response iterable is passed on wrapped: the request ends (and is timed) when iteration
  ends, fails or is closed; the app's ``close()`` is called exactly once, when the server
  closes the response. ``len()`` is passed through, so servers still set Content-Length. A
  response a server drops without closing it (against PEP 3333) leaves its request unfinished
  and unreported, but in its own context: nothing leaks into the thread.
* Flask turns a handler's exception into a 500 response before WSGI middleware sees anything;
  when the app is a Flask app (or its ``wsgi_app``), the middleware listens to that app's
  ``got_request_exception`` signal, so the event has the real exception. The route template
  is Flask's ``request.url_rule.rule``, read while the request is live. Other frameworks:
  ``route_name=``, a function of the environ (called when the response starts).
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeAlias

from obskit import diagnostics, errors
from obskit.integrations._http import (
    DEFAULT_EXCLUDE_PATHS,
    DEFAULT_RECORD_HEADERS,
    Exchange,
    HTTPOptions,
    begin,
    handler_culprit,
)

__all__ = ["ObskitWSGIMiddleware", "flask_route"]

Environ: TypeAlias = dict[str, Any]
StartResponse: TypeAlias = Callable[..., Any]
WSGIApp: TypeAlias = Callable[[Environ, StartResponse], Iterable[bytes]]

#: The exchange of the request running in this context (for framework hooks: Flask's signal).
_current: contextvars.ContextVar[Exchange | None] = contextvars.ContextVar(
    "obskit_wsgi_exchange", default=None
)
_UNPREFIXED = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}


class ObskitWSGIMiddleware:
    """WSGI middleware: request scope, span, request id, route-named metrics, error events.

    Takes the same options as :class:`~obskit.integrations.asgi.ObskitASGIMiddleware`;
    ``route_name`` is a function of the WSGI environ.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        request_id_header: str = "X-Request-ID",
        response_request_id: bool = True,
        record_headers: Iterable[str] = DEFAULT_RECORD_HEADERS,
        route_name: Callable[[Environ], str | None] | None = None,
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
        self._keys = {
            name: _UNPREFIXED.get(name) or "HTTP_" + name.upper().replace("-", "_")
            for name in self.options.wanted
        }
        self.flask_app = _listen_to_flask(app)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self.options.exclude_paths and self._excluded(environ):
            try:
                return self.app(environ, start_response)
            except Exception as exc:
                errors.capture_failure(exc)
                raise
        context = contextvars.copy_context()
        exchange = context.run(self._begin, environ)
        if exchange is None:
            return self.app(environ, start_response)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = self._response_start(exchange, environ, status, headers)
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        try:
            result = context.run(self.app, environ, start)
        except BaseException as exc:
            context.run(exchange.finish, exc)
            raise
        return ResponseBody(result, context, exchange)

    def _excluded(self, environ: Environ) -> bool:
        try:
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
            return self.options.excluded(path)
        except Exception as exc:
            diagnostics.report("wsgi_environ", f"could not read a WSGI environ: {exc!r}")
            return False

    def _begin(self, environ: Environ) -> Exchange | None:
        try:
            headers: dict[str, str] = {}
            for name, key in self._keys.items():
                value = environ.get(key)
                if isinstance(value, str):
                    headers[name] = value
            method = environ.get("REQUEST_METHOD", "")
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        except Exception as exc:
            diagnostics.report("wsgi_environ", f"could not read a WSGI environ: {exc!r}")
            return None
        exchange = begin(self.options, method, path, headers)
        if exchange is not None:
            hook = self.options.route_name
            exchange.source = environ
            exchange.peek_route = hook or flask_route
        _current.set(exchange)
        return exchange

    def _response_start(
        self, exchange: Exchange, environ: Environ, status: str, headers: list[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """Note status and route; a copy of ``headers`` with the request id, if it was added."""
        try:
            _resolve(exchange, environ, self.options.route_name)
            exchange.response_started(status.split(None, 1)[0])
            if (exchange.status or 0) >= 500:  # the view is known while the request is live
                culprit = _flask_culprit(environ)
                exchange.culprit = lambda _: culprit
            if self.options.response_request_id:
                name = self.options.request_id_header
                if not any(key.lower() == name for key, _ in headers):
                    return [*headers, (name_case(name), exchange.request_id)]
        except Exception as exc:
            diagnostics.report("wsgi_response", f"could not annotate a response: {exc!r}")
        return headers


def name_case(name: str) -> str:
    """``x-request-id`` -> ``X-Request-Id`` (how the header is written back)."""
    return "-".join(part.capitalize() for part in name.split("-"))


class ResponseBody:
    """The app's response iterable, stepped in the request's context and ended exactly once."""

    __slots__ = ("_closed", "_context", "_exchange", "_iterator", "_result")

    def __init__(
        self, result: Iterable[bytes], context: contextvars.Context, exchange: Exchange
    ) -> None:
        self._result = result
        self._context = context
        self._exchange = exchange
        self._iterator: Iterator[bytes] | None = None
        self._closed = False

    def __iter__(self) -> ResponseBody:
        return self

    def __next__(self) -> bytes:
        try:
            iterator = self._iterator
            if iterator is None:
                iterator = self._iterator = self._context.run(iter, self._result)
            return self._context.run(next, iterator)
        except StopIteration:
            self._finish(None)
            raise
        except BaseException as exc:
            self._finish(exc)
            raise

    def __len__(self) -> int:
        return len(self._result)  # type: ignore[arg-type]  # TypeError if it has none

    def close(self) -> None:
        """Close the app's iterable (once), then end the request if iteration did not."""
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                self._context.run(close)
        except BaseException as exc:
            self._finish(exc)
            raise
        finally:
            self._finish(None)

    def _finish(self, exc: BaseException | None) -> None:
        if not self._exchange.done:
            self._context.run(self._exchange.finish, exc)


def _resolve(
    exchange: Exchange, environ: Environ, hook: Callable[[Environ], str | None] | None
) -> None:
    if exchange.route is not None:
        return
    try:
        exchange.resolve(hook(environ) if hook is not None else flask_route(environ))
    except Exception as exc:
        diagnostics.report("wsgi_route", f"could not read the route template: {exc!r}")


def flask_route(environ: Environ) -> str | None:
    """The template of the Flask (werkzeug) rule that matched, while the request is live."""
    request = environ.get("werkzeug.request")
    rule = getattr(request, "url_rule", None)
    template = getattr(rule, "rule", None)
    if not isinstance(template, str):
        return None
    script_name = environ.get("SCRIPT_NAME") or ""
    return f"{script_name}{template}"


def _flask_culprit(environ: Environ) -> str | None:
    """The Flask view function that handled the request, as ``module in function``."""
    request = environ.get("werkzeug.request")
    endpoint = getattr(request, "endpoint", None)
    flask = sys.modules.get("flask")
    if endpoint is None or flask is None:
        return None
    view = flask.current_app.view_functions.get(endpoint) if flask.has_app_context() else None
    return handler_culprit(view) if view is not None else None


def _listen_to_flask(app: Any) -> Any:
    """The Flask app behind ``app`` (itself or its bound ``wsgi_app``), now listened to."""
    flask = sys.modules.get("flask")
    if flask is None:
        return None
    owner = getattr(app, "__self__", app)
    if not isinstance(owner, flask.Flask):
        return None
    flask.got_request_exception.connect(_on_flask_exception, sender=owner, weak=False)
    return owner


def _on_flask_exception(sender: Any, exception: BaseException | None = None, **_: Any) -> None:
    exchange = _current.get()
    if exchange is None or exception is None:
        return
    try:
        environ = getattr(getattr(sys.modules["flask"], "request", None), "environ", None)
        if environ is not None:
            _resolve(exchange, environ, exchange.options.route_name)
        exchange.capture(exception)
    except Exception as exc:
        diagnostics.report("flask_exception", f"could not capture a Flask exception: {exc!r}")
