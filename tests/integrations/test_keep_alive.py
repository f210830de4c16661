"""Keep-alive connections and failing routes on a real uvicorn server.

Starlette answers an escaping exception with a 500 from its ``ServerErrorMiddleware`` and then
re-raises it (as ASGI servers expect); uvicorn closes the connection once the exception reaches
it, announced or not. With obskit's middleware inside Starlette's stack (``add_middleware``)
the connection is handled exactly as without obskit; wrapped around the app, obskit says
``Connection: close`` on that 500, so a keep-alive client opens a new connection instead of
losing the request it would send on the closing one. A 500 the app returns itself keeps the
connection as it is.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from obskit.exporters import InMemoryExporter
from obskit.integrations import ObskitASGIMiddleware

from .conftest import settled, uvicorn_server


async def boom(request: Request) -> PlainTextResponse:
    raise RuntimeError("flaky dependency failed")


async def unavailable(request: Request) -> PlainTextResponse:
    return PlainTextResponse("try later", status_code=503)


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def service() -> Starlette:
    return Starlette(
        routes=[Route("/boom", boom), Route("/unavailable", unavailable), Route("/ok", ok)]
    )


def added(app: Starlette) -> Any:
    app.add_middleware(ObskitASGIMiddleware)
    return app


def exchange(connection: http.client.HTTPConnection, path: str) -> http.client.HTTPResponse:
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    return response


def connect(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)


def after_a_failure(install: Callable[[Starlette], Any]) -> tuple[str | None, bool]:
    """(the Connection header of the 500, whether the server closed the connection after it)."""
    with uvicorn_server(install(service())) as url:
        connection = connect(url)
        try:
            response = exchange(connection, "/boom")
            assert response.status == 500
            header = response.getheader("connection")
            if response.will_close:  # the client was told: it does not reuse the connection
                return header, True
            assert connection.sock is not None
            connection.sock.settimeout(30)
            return header, connection.sock.recv(1) == b""  # waits for the server's decision
        finally:
            connection.close()


def test_obskit_inside_starlette_keeps_or_closes_connections_as_the_bare_app_does(
    quiet_memory: InMemoryExporter,
) -> None:
    bare = after_a_failure(lambda app: app)
    with_obskit = after_a_failure(added)
    assert with_obskit == bare
    assert bare[1], "uvicorn closes the connection after an exception the app re-raised"
    assert len(settled(quiet_memory, spans=1).errors) == 1


def test_wrapped_obskit_announces_the_close_after_an_escaping_exception(
    quiet_memory: InMemoryExporter,
) -> None:
    header, closed = after_a_failure(ObskitASGIMiddleware)
    assert header == "close" and closed
    (event,) = settled(quiet_memory, spans=1).errors
    assert "flaky dependency failed" in event.title


@pytest.mark.parametrize("install", [added, ObskitASGIMiddleware], ids=["added", "wrapped"])
def test_a_500_the_app_returns_keeps_the_connection_alive(
    quiet_memory: InMemoryExporter, install: Callable[[Starlette], Any]
) -> None:
    with uvicorn_server(install(service())) as url:
        connection = connect(url)
        try:
            first = exchange(connection, "/unavailable")
            assert first.status == 503 and not first.will_close
            assert first.getheader("connection") is None
            assert exchange(connection, "/ok").status == 200  # the same connection
        finally:
            connection.close()
