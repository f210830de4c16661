"""Outgoing calls with httpx (sync and async) and requests, against a real uvicorn server that
runs ObskitASGIMiddleware: a client span and a breadcrumb per call, safe URLs, and the server's
span continuing the caller's trace through the injected ``traceparent``."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator

import httpx
import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import obskit
from obskit.errors import breadcrumbs
from obskit.exporters import InMemoryExporter
from obskit.integrations import ObskitASGIMiddleware
from obskit.integrations._client import safe_url
from obskit.integrations.httpx import ObskitAsyncTransport, ObskitTransport
from obskit.integrations.requests import ObskitAdapter, instrument_session

from .conftest import TRACEPARENT, settled, uvicorn_server


async def echo(request: Request) -> JSONResponse:
    status = int(request.query_params.get("status", "200"))
    return JSONResponse({"traceparent": request.headers.get("traceparent")}, status_code=status)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    app = Starlette(routes=[Route("/echo/{name}", echo)])
    app.add_middleware(ObskitASGIMiddleware)
    with uvicorn_server(app) as url:
        yield url


Crumbs = list[breadcrumbs.Breadcrumb]


def http_crumbs() -> Crumbs:
    return [c for c in breadcrumbs.current_trail() if c.category == "http"]


def get_with_httpx(url: str, **headers: str) -> tuple[int, Crumbs]:
    with httpx.Client(transport=ObskitTransport()) as client:
        return client.get(url, headers=headers).status_code, http_crumbs()


def get_with_httpx_async(url: str, **headers: str) -> tuple[int, Crumbs]:
    async def get() -> tuple[int, Crumbs]:
        async with httpx.AsyncClient(transport=ObskitAsyncTransport()) as client:
            status = (await client.get(url, headers=headers)).status_code
        return status, http_crumbs()  # breadcrumbs stay in the task that added them

    return asyncio.run(get())


def get_with_requests(url: str, **headers: str) -> tuple[int, Crumbs]:
    with instrument_session(requests.Session()) as session:
        return session.get(url, headers=headers, timeout=30).status_code, http_crumbs()


CLIENTS: dict[str, Callable[..., tuple[int, Crumbs]]] = {
    "httpx": get_with_httpx,
    "httpx-async": get_with_httpx_async,
    "requests": get_with_requests,
}


@pytest.fixture(params=list(CLIENTS))
def get(request: pytest.FixtureRequest) -> Callable[..., tuple[int, Crumbs]]:
    return CLIENTS[request.param]


def test_call_is_a_client_span_and_a_breadcrumb_and_the_server_continues_the_trace(
    server: str, quiet_memory: InMemoryExporter, get: Callable[..., tuple[int, Crumbs]]
) -> None:
    with obskit.request("nightly sync") as job:
        status, [crumb] = get(f"{server}/echo/a?page=2&api_key=s3cr3t")
    assert status == 200
    port = server.rsplit(":", 1)[1]
    safe = f"http://127.0.0.1:{port}/echo/a?page=2&api_key=[Filtered]"
    assert crumb.message == f"GET {safe}" and crumb.level == "info"
    assert crumb.data["status_code"] == 200 and 0 < crumb.data["duration_ms"] < 10_000
    memory = settled(quiet_memory, spans=3)
    by_kind = {s.span_kind: s for s in memory.spans}
    client, server_span, job_span = by_kind["client"], by_kind["server"], by_kind["internal"]
    assert client.name == "GET 127.0.0.1" and client.attributes["url.full"] == safe
    assert client.attributes["http.response.status_code"] == 200
    assert client.trace_id == job_span.trace_id == server_span.trace_id == job.trace_id
    assert client.parent_span_id == job_span.span_id
    assert server_span.parent_span_id == client.span_id
    assert server_span.name == "GET /echo/{name}"
    assert "s3cr3t" not in repr(memory.records)


def test_server_error_marks_span_and_breadcrumb(
    server: str, quiet_memory: InMemoryExporter, get: Callable[..., tuple[int, Crumbs]]
) -> None:
    with obskit.request("job"):
        status, [crumb] = get(f"{server}/echo/a?status=502")
    assert status == 502
    assert crumb.level == "error" and crumb.data["status_code"] == 502
    [client] = [s for s in settled(quiet_memory, spans=3).spans if s.span_kind == "client"]
    assert client.status == "error" and client.attributes["error.type"] == "502"


def test_a_traceparent_the_caller_set_is_kept(server: str, quiet_memory: InMemoryExporter) -> None:
    with httpx.Client() as plain:  # what the server received, echoed back
        assert plain.get(f"{server}/echo/x").json()["traceparent"] is None
    for client in ("httpx", "requests"):
        with obskit.request("job"):
            if client == "httpx":
                with httpx.Client(transport=ObskitTransport()) as c:
                    seen = c.get(f"{server}/echo/x", headers={"traceparent": TRACEPARENT})
            else:
                with instrument_session(requests.Session()) as s:
                    seen = s.get(f"{server}/echo/x", headers={"traceparent": TRACEPARENT})
        assert seen.json()["traceparent"] == TRACEPARENT


def test_connection_failure_is_an_error_breadcrumb_and_the_exception_is_unchanged(
    quiet_memory: InMemoryExporter,
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/x"
    with obskit.request("job"):
        with pytest.raises(httpx.ConnectError), httpx.Client(transport=ObskitTransport()) as c:
            c.get(url)
        with pytest.raises(requests.ConnectionError):
            instrument_session(requests.Session()).get(url, timeout=10)
        crumbs = http_crumbs()
    assert [(c.level, c.data["error"]) for c in crumbs] == [
        ("error", "ConnectError"),
        ("error", "ConnectionError"),
    ]
    clients = [s for s in settled(quiet_memory, spans=3).spans if s.span_kind == "client"]
    assert [s.status for s in clients] == ["error", "error"]


def test_instrument_session_keeps_the_adapters_settings() -> None:
    session = requests.Session()
    session.mount("https://", requests.adapters.HTTPAdapter(max_retries=3))
    instrument_session(instrument_session(session))
    adapter = session.get_adapter("https://example.com")
    assert isinstance(adapter, ObskitAdapter) and not isinstance(adapter.adapter, ObskitAdapter)
    assert adapter.max_retries.total == 3


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://ann:pw@h.example/p?q=1#frag", "https://h.example/p?q=1"),
        (
            "http://h.example/p?token=abc&Token=abc&page=2",
            "http://h.example/p?token=[Filtered]&Token=[Filtered]&page=2",
        ),
        ("http://h.example/p?password=&flag&x=1", "http://h.example/p?password=&flag&x=1"),
        ("http://[::1]:8080/p?session_id=9", "http://[::1]:8080/p?session_id=[Filtered]"),
        ("http://h.example/reset?next=/a&code=1", "http://h.example/reset?next=/a&code=1"),
        ("http://[bad/", "<invalid url>"),
    ],
)
def test_safe_url(url: str, safe: str) -> None:
    assert safe_url(url) == safe
