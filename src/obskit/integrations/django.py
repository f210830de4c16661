"""``ObskitDjangoMiddleware``: every Django request as an ``obskit.request``, named by its URL
pattern.

Install it first in ``MIDDLEWARE`` (so it sees the whole request)::

    MIDDLEWARE = [
        "obskit.integrations.django.ObskitDjangoMiddleware",
        "django.middleware.common.CommonMiddleware",
        ...
    ]

Options go in the Django setting ``OBSKIT_MIDDLEWARE`` (a dict of the keywords
:class:`~obskit.integrations.asgi.ObskitASGIMiddleware` takes: ``record_headers``,
``exclude_paths``, ``request_id_header``, ``response_request_id``, ``capture_server_errors``).

What it adds over the WSGI middleware: the route template from ``request.resolver_match``
(``GET /users/<int:user_id>/``, the full pattern through ``include()``; ``GET <unrouted>`` when
nothing matched), on the span, the request metrics and every log record inside the request;
the view's exception itself (Django turns it into a 500 response before any middleware sees
it: ``process_exception`` captures it first); the view as the culprit of a 5xx response. Each
request runs in a copy of the context, so nothing of it stays in the server's thread. A
streaming response ends (and is timed) when Django closes it.

The middleware is sync and async capable, as Django documents for hybrid middleware: under
ASGI with an async chain it runs as a coroutine (no thread hop for async views); under WSGI, or
in a sync chain, as a plain function.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from obskit import diagnostics, errors
from obskit.integrations._http import Exchange, HTTPOptions, begin, handler_culprit

__all__ = ["ObskitDjangoMiddleware", "django_route"]

_UNPREFIXED = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}


class ObskitDjangoMiddleware:
    """Django middleware: request scope, span, request id, route-named metrics, error events."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        from asgiref.sync import iscoroutinefunction, markcoroutinefunction
        from django.conf import settings

        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:  # Django then awaits this instance
            markcoroutinefunction(self)
        self.options = HTTPOptions(**getattr(settings, "OBSKIT_MIDDLEWARE", {}))
        self._keys = {
            name: _UNPREFIXED.get(name) or "HTTP_" + name.upper().replace("-", "_")
            for name in self.options.wanted
        }

    def __call__(self, request: Any) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        if self.options.exclude_paths and self._excluded(request):
            try:
                return self.get_response(request)
            except Exception as exc:
                errors.capture_failure(exc)
                raise
        context = contextvars.copy_context()
        exchange = context.run(self._begin, request)
        if exchange is None:
            return self.get_response(request)
        try:
            response = context.run(self.get_response, request)
        except BaseException as exc:
            context.run(exchange.finish, exc)
            raise
        return self._finish(context, exchange, request, response)

    async def __acall__(self, request: Any) -> Any:
        """The async chain's call: the same, with the rest of the chain awaited."""
        if self.options.exclude_paths and self._excluded(request):
            try:
                return await self.get_response(request)
            except Exception as exc:
                errors.capture_failure(exc)
                raise
        context = contextvars.copy_context()
        exchange = context.run(self._begin, request)
        if exchange is None:
            return await self.get_response(request)
        try:
            # a task started inside the request's context runs in a copy of it: the view sees
            # the request scope, and the scope is closed in the context that opened it
            response = await context.run(asyncio.ensure_future, self.get_response(request))
        except BaseException as exc:
            context.run(exchange.finish, exc)
            raise
        return self._finish(context, exchange, request, response)

    def _finish(
        self, context: contextvars.Context, exchange: Exchange, request: Any, response: Any
    ) -> Any:
        """Note the response; end the request now, or when Django closes a streaming one.

        A streaming body is iterated by the server after every middleware has returned: its
        parts are made inside the request's context, so their records carry the route (a file
        Django hands to the server whole is left as it is)."""
        context.run(self._response, exchange, request, response)
        if getattr(response, "streaming", False) and _parts_wrappable(response):
            try:
                parts = response.streaming_content
                wrap = _parts_in if getattr(response, "is_async", False) else _sync_parts_in
                response.streaming_content = wrap(context, parts)
            except Exception as exc:
                diagnostics.report("django_response", f"could not wrap a streaming body: {exc!r}")
        if getattr(response, "streaming", False) and hasattr(response, "_resource_closers"):
            response._resource_closers.append(lambda: context.run(exchange.finish, None))
        else:
            context.run(exchange.finish, None)
        return response

    def process_exception(self, request: Any, exception: Exception) -> None:
        """Capture the view's exception before Django turns it into a 500 response."""
        exchange = getattr(request, "_obskit_exchange", None)
        if exchange is None or exchange.done:
            return None
        try:
            exchange.resolve(django_route(request))
            exchange.capture(exception)
        except Exception as exc:
            diagnostics.report("django_exception", f"could not capture an exception: {exc!r}")
        return None

    def _excluded(self, request: Any) -> bool:
        try:
            return self.options.excluded(request.path)
        except Exception as exc:
            diagnostics.report("django_request", f"could not read a request: {exc!r}")
            return False

    def _begin(self, request: Any) -> Exchange | None:
        try:
            meta = request.META
            headers: dict[str, str] = {}
            for name, key in self._keys.items():
                value = meta.get(key)
                if isinstance(value, str):
                    headers[name] = value
            method, path = request.method or "", request.path
        except Exception as exc:
            diagnostics.report("django_request", f"could not read a request: {exc!r}")
            return None
        exchange = begin(self.options, method, path, headers)
        if exchange is not None:
            exchange.source = request
            exchange.peek_route = django_route
            exchange.culprit = _view_culprit
            try:
                request._obskit_exchange = exchange
            except Exception:
                pass
        return exchange

    def _response(self, exchange: Exchange, request: Any, response: Any) -> None:
        """Note route and status; add the request id header unless the view set one."""
        try:
            exchange.resolve(django_route(request))
            exchange.response_started(response.status_code)
            name = self.options.request_id_header
            if self.options.response_request_id and not response.has_header(name):
                response[name] = exchange.request_id
        except Exception as exc:
            diagnostics.report("django_response", f"could not annotate a response: {exc!r}")


def _parts_wrappable(response: Any) -> bool:
    """Whether a streaming response's parts can be made in the request's context: not a file
    the server may send whole (``FileResponse`` with ``wsgi.file_wrapper``)."""
    return getattr(response, "file_to_stream", None) is None


def _sync_parts_in(context: contextvars.Context, parts: Any) -> Iterator[Any]:
    """A streaming body whose parts are made inside the request's context."""
    iterator = iter(parts)
    try:
        while True:
            try:
                part = context.run(next, iterator)
            except StopIteration:
                return
            yield part
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


async def _parts_in(context: contextvars.Context, parts: Any) -> AsyncIterator[Any]:
    """An async streaming body whose parts are made inside the request's context (each in a
    task started there)."""
    iterator = parts.__aiter__()
    try:
        while True:
            try:
                part = await context.run(asyncio.ensure_future, iterator.__anext__())
            except StopAsyncIteration:
                return
            yield part
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()


def django_route(request: Any) -> str | None:
    """The URL pattern that matched (``/users/<int:user_id>/``), or ``None`` before/without
    a match. ``include()`` prefixes are part of it; ``SCRIPT_NAME`` goes in front."""
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None)
    if not isinstance(route, str):
        return None
    script_name = (request.META.get("SCRIPT_NAME") or "").rstrip("/")
    return f"{script_name}/{route.lstrip('^')}"


def _view_culprit(request: Any) -> str | None:
    match = getattr(request, "resolver_match", None)
    view = getattr(match, "func", None)
    if view is None:
        return None
    return handler_culprit(getattr(view, "view_class", view))
