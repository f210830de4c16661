"""httpx transports that give every outgoing call a span and a breadcrumb, and inject the trace.

Wrap the transport the client would use (sync and async)::

    client = httpx.Client(transport=ObskitTransport())
    client = httpx.AsyncClient(transport=ObskitAsyncTransport(httpx.AsyncHTTPTransport(retries=2)))

Each request that reaches the transport (every redirect hop, every retry made above it) gets a
client span ``GET api.example.com`` with the safe URL, status and error type; a ``traceparent``
header (unless the request already has one); and an ``http`` breadcrumb in the caller's trail.
The response (status, headers, a streamed body) and any exception come back unchanged; the
timing ends when the response headers arrive. An explicit transport is also how httpx stops
reading proxy settings from the environment: give the wrapped transport ``proxy=`` yourself, or
wrap the transports you pass as ``mounts``.
"""

from __future__ import annotations

import httpx

from obskit.integrations._client import OutgoingCall

__all__ = ["ObskitAsyncTransport", "ObskitTransport"]


class ObskitTransport(httpx.BaseTransport):
    """A sync httpx transport around ``transport`` (default: ``httpx.HTTPTransport()``)."""

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self.transport = transport if transport is not None else httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        call = OutgoingCall(request.method, str(request.url), request.headers)
        try:
            response = self.transport.handle_request(request)
        except BaseException as exc:
            call.end(None, exc)
            raise
        call.end(response.status_code)
        return response

    def close(self) -> None:
        self.transport.close()


class ObskitAsyncTransport(httpx.AsyncBaseTransport):
    """An async httpx transport around ``transport`` (default: ``httpx.AsyncHTTPTransport()``)."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.transport = transport if transport is not None else httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        call = OutgoingCall(request.method, str(request.url), request.headers)
        try:
            response = await self.transport.handle_async_request(request)
        except BaseException as exc:
            call.end(None, exc)
            raise
        call.end(response.status_code)
        return response

    async def aclose(self) -> None:
        await self.transport.aclose()
