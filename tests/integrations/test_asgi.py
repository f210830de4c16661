"""ObskitASGIMiddleware over a real uvicorn server on loopback (and in-process where the point
is object identity): request scope, route-named spans and metrics, request ids, trace
continuation, error events, streaming, pass-through of websockets and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

import obskit
from obskit import diagnostics, metrics
from obskit.exporters import InMemoryExporter
from obskit.integrations import ObskitASGIMiddleware
from obskit.integrations import _http as http_core

from ..conftest import RecordingSink
from .conftest import PARENT_SPAN_ID, TRACE_ID, TRACEPARENT, flushed, settled, uvicorn_server

log = obskit.get_logger("shop")
STREAM_CHUNKS, STREAM_PAUSE_S = 4, 0.05
started: list[str] = []


async def user(request: Request) -> JSONResponse:
    obskit.add_breadcrumb("db", "SELECT user")
    log.info("user loaded", user_id=request.path_params["user_id"])
    return JSONResponse({"context": obskit.current_context()})


async def boom(request: Request) -> PlainTextResponse:
    obskit.add_breadcrumb("db", "SELECT boom")
    raise RuntimeError("kaboom")


async def unavailable(request: Request) -> PlainTextResponse:
    return PlainTextResponse("down", status_code=503)


async def stream(request: Request) -> StreamingResponse:
    async def chunks() -> Any:
        for index in range(STREAM_CHUNKS):
            await asyncio.sleep(STREAM_PAUSE_S)
            yield f"chunk {index}\n".encode()

    return StreamingResponse(chunks())


async def work(request: Request) -> PlainTextResponse:
    """Each request leaves breadcrumbs and logs naming its own id; odd ones fail."""
    mine = request.headers["x-request-id"]
    number = int(request.path_params["number"])
    obskit.add_breadcrumb("step", f"start {mine}")
    await asyncio.sleep(random.uniform(0, 0.02))
    log.info("working", mine=mine)
    obskit.add_breadcrumb("step", f"done {mine}")
    if number % 2:
        raise ValueError(f"job {number} failed")
    return PlainTextResponse(mine)


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())
    await websocket.close()


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> Any:
    started.append("up")
    yield


async def item(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(request.path_params["item_id"]))


def starlette_app() -> Starlette:
    items = Starlette(routes=[Route("/items/{item_id:int}", item)])
    app = Starlette(
        routes=[
            Route("/users/{user_id}", user),
            Route("/boom", boom),
            Route("/unavailable", unavailable),
            Route("/stream", stream),
            Route("/work/{number:int}", work),
            WebSocketRoute("/ws", echo),
            Mount("/api", app=items),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(ObskitASGIMiddleware)
    return app


@pytest.fixture(scope="module")
def server() -> Any:
    with uvicorn_server(starlette_app()) as url:
        yield url


def spans_named(memory: InMemoryExporter, name: str, total: int = 1) -> list[Any]:
    return [s for s in settled(memory, spans=total).spans if s.name == name]


def test_ok_request_is_a_server_span_named_after_its_route(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    response = httpx.get(f"{server}/users/42")
    assert response.status_code == 200
    [span] = spans_named(quiet_memory, "GET /users/{user_id}")
    assert span.span_kind == "server" and span.status == "unset"
    assert span.attributes["http.route"] == "/users/{user_id}"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["url.path"] == "/users/42"
    assert span.attributes["request.id"] == response.headers["x-request-id"]
    [record] = quiet_memory.logs
    assert record.fields["request_id"] == response.headers["x-request-id"]
    assert record.trace_id == span.trace_id


def test_mounted_and_unmatched_paths_keep_low_cardinality_names(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    assert httpx.get(f"{server}/api/items/7").status_code == 200
    assert httpx.get(f"{server}/no/such/page/93").status_code == 404
    names = {s.name for s in settled(quiet_memory, spans=2).spans}
    assert names == {"GET /api/items/{item_id}", "GET <unrouted>"}


def test_a_huge_path_is_cut_in_the_record(server: str, quiet_memory: InMemoryExporter) -> None:
    assert httpx.get(f"{server}/users/{'9' * 5000}").status_code == 200
    [span] = spans_named(quiet_memory, "GET /users/{user_id}")
    assert len(span.attributes["url.path"]) == 2048


def test_fastapi_route_templates(quiet_memory: InMemoryExporter) -> None:
    app = FastAPI()
    app.add_middleware(ObskitASGIMiddleware)

    @app.get("/orders/{order_id}/lines/{line:int}")
    async def line(order_id: str, line: int) -> dict[str, Any]:
        return {"order": order_id, "line": line}

    with uvicorn_server(app) as url:
        assert httpx.get(f"{url}/orders/o-1/lines/3").json() == {"order": "o-1", "line": 3}
        assert httpx.post(f"{url}/orders/o-1/lines/3").status_code == 405
    # (FastAPI >= 0.142 opens server spans of its own: obskit joins them, one per request.)
    spans = settled(quiet_memory, spans=2).spans
    names = sorted(s.name for s in spans if s.span_kind == "server")
    assert names == ["GET /orders/{order_id}/lines/{line}", "POST /orders/{order_id}/lines/{line}"]


def test_unhandled_exception_gives_the_framework_500_and_one_error_event(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    response = httpx.get(f"{server}/boom")
    assert response.status_code == 500 and response.text == "Internal Server Error"
    [event] = settled(quiet_memory, spans=1).errors
    assert event.exceptions[-1]["type"] == "RuntimeError"
    assert event.exceptions[-1]["value"] == "kaboom"
    assert event.context["path"] == "/boom"
    assert event.context["http"]["route"] == "/boom"
    assert [b["message"] for b in event.breadcrumbs] == ["GET", "SELECT boom"]
    [span] = spans_named(quiet_memory, "GET /boom")
    assert span.status == "error"
    assert [e["name"] for e in span.events] == ["exception"]
    assert event.trace_id == span.trace_id


def test_5xx_response_without_exception_is_an_error_event(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    response = httpx.get(f"{server}/unavailable")
    assert response.status_code == 503 and response.text == "down"
    [event] = settled(quiet_memory, spans=1).errors
    assert event.level == "error" and event.message == "HTTP 503 GET /unavailable"
    assert event.context["http"]["status_code"] == 503
    [span] = spans_named(quiet_memory, "GET /unavailable")
    assert span.status == "error"


def test_request_metrics_are_labelled_by_route(server: str, quiet_memory: Any) -> None:
    sink = RecordingSink()
    metrics.add_sink(sink)
    try:
        for number in (1, 2):
            httpx.get(f"{server}/users/{number}")
        httpx.get(f"{server}/boom")
        # The server records a request's metrics just after its response has left.
        deadline = time.monotonic() + 30
        while sum(p[1] == "http.server.request.duration" for p in sink.points) < 3:
            assert time.monotonic() < deadline, sink.points
            time.sleep(0.01)
    finally:
        metrics.remove_sink(sink)
    durations = [
        labels for _, name, _, labels in sink.points if name == "http.server.request.duration"
    ]
    assert sorted(durations, key=str) == sorted(
        [
            {"http.request.method": "GET", "http.route": "/users/{user_id}",
             "http.response.status_code": 200},
            {"http.request.method": "GET", "http.route": "/users/{user_id}",
             "http.response.status_code": 200},
            {"http.request.method": "GET", "http.route": "/boom",
             "error.type": "RuntimeError"},  # the app raised: no response status
        ],
        key=str,
    )  # fmt: skip
    assert not [p for p in sink.points if p[1] == "obskit.request.duration"]


def test_request_id_round_trip(server: str, quiet_memory: InMemoryExporter) -> None:
    response = httpx.get(f"{server}/users/1", headers={"X-Request-ID": "req-abc.123"})
    assert response.headers["x-request-id"] == "req-abc.123"
    assert response.json()["context"]["request_id"] == "req-abc.123"
    assert settled(quiet_memory, spans=1).logs[0].fields["request_id"] == "req-abc.123"


def test_a_request_id_from_the_client_is_scrubbed(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    """Only ids obskit made itself (hex) skip the secret search; a client's id is searched."""
    response = httpx.get(f"{server}/users/1", headers={"X-Request-ID": "password=hunter2"})
    assert response.headers["x-request-id"] == "password=hunter2"  # the client's own, back
    memory = settled(quiet_memory, spans=1)
    [span] = spans_named(memory, "GET /users/{user_id}")
    assert memory.logs[0].fields["request_id"] == "password=[Filtered]"
    assert span.attributes["request.id"] == "password=[Filtered]"
    generated = httpx.get(f"{server}/users/1").headers["x-request-id"]
    assert settled(quiet_memory, spans=2).logs[1].fields["request_id"] == generated


def test_generated_request_id_is_returned(server: str, quiet_memory: InMemoryExporter) -> None:
    first, second = (httpx.get(f"{server}/users/1") for _ in range(2))
    ids = {first.headers["x-request-id"], second.headers["x-request-id"]}
    assert len(ids) == 2
    assert {r.json()["context"]["request_id"] for r in (first, second)} == ids


@pytest.mark.parametrize(
    "bad",
    ["x" * 129, "has space", 'quote"d', "semi;colon", "caf\u00e9".encode()],
)
def test_malformed_request_id_is_replaced(
    server: str, quiet_memory: InMemoryExporter, bad: str | bytes
) -> None:
    response = httpx.get(f"{server}/users/1", headers={"X-Request-ID": bad})
    fresh = response.headers["x-request-id"]
    assert fresh not in (bad, "caf\u00e9") and len(fresh) == 32
    assert response.json()["context"]["request_id"] == fresh


def test_trace_continues_from_incoming_traceparent(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    response = httpx.get(f"{server}/users/5", headers={"traceparent": TRACEPARENT})
    [span] = spans_named(quiet_memory, "GET /users/{user_id}")
    assert span.trace_id == TRACE_ID and span.parent_span_id == PARENT_SPAN_ID
    # With no X-Request-ID the trace id doubles as the request id.
    assert response.headers["x-request-id"] == TRACE_ID


@pytest.mark.parametrize(
    "bad",
    [
        f"00-{TRACE_ID[:-1]}g-{PARENT_SPAN_ID}-01",  # bad hex
        f"00-{'0' * 32}-{PARENT_SPAN_ID}-01",  # zero trace id
        f"ff-{TRACE_ID}-{PARENT_SPAN_ID}-01",  # forbidden version
        f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01" + "-x" * 200,  # too long
        f"00-{TRACE_ID}-{PARENT_SPAN_ID}",  # truncated
    ],
)
def test_malformed_traceparent_starts_a_fresh_trace(
    server: str, quiet_memory: InMemoryExporter, bad: str
) -> None:
    response = httpx.get(f"{server}/users/5", headers={"traceparent": bad})
    [span] = spans_named(quiet_memory, "GET /users/{user_id}")
    assert span.trace_id != TRACE_ID and span.parent_span_id is None
    assert span.trace_id != "0" * 32
    assert response.headers["x-request-id"] != TRACE_ID


async def test_control_characters_in_headers_are_ignored(quiet_memory: InMemoryExporter) -> None:
    # An HTTP client refuses to send these, so the scope is handed to the middleware directly.
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Any) -> None:
        sent.append(message)

    headers = [
        (b"x-request-id", b"evil\r\nSet-Cookie: x=1"),
        (b"traceparent", f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01\x00".encode()),
    ]
    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers}
    await ObskitASGIMiddleware(app)(scope, receive_nothing, send)
    returned = dict(sent[0]["headers"])[b"x-request-id"]
    assert b"evil" not in returned and len(returned) == 32
    [span] = flushed(quiet_memory).spans
    assert span.trace_id != TRACE_ID


async def receive_nothing() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def test_streaming_response_is_timed_to_the_last_byte(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    with httpx.stream("GET", f"{server}/stream") as response:
        body = b"".join(response.iter_bytes())
    assert body.count(b"chunk") == STREAM_CHUNKS
    [span] = spans_named(quiet_memory, "GET /stream")
    assert span.duration_ms >= STREAM_CHUNKS * STREAM_PAUSE_S * 1000 * 0.9


async def test_websocket_and_lifespan_pass_through(quiet_memory: InMemoryExporter) -> None:
    started.clear()
    app = starlette_app()
    lifespan_in = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    websocket_in = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "ping"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    lifespan_out = await drive(app, {"type": "lifespan", "state": {}}, lifespan_in)
    assert started == ["up"]
    assert [m["type"] for m in lifespan_out] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    scope = {"type": "websocket", "path": "/ws", "headers": [], "query_string": b""}
    websocket_out = await drive(app, scope, websocket_in)
    assert [(m["type"], m.get("text")) for m in websocket_out] == [
        ("websocket.accept", None),
        ("websocket.send", "ping"),
        ("websocket.close", None),
    ]
    assert flushed(quiet_memory).spans == []


async def drive(app: Any, scope: dict[str, Any], incoming: list[dict[str, Any]]) -> list[Any]:
    """Run ``app`` in process: feed it ``incoming`` messages, return what it sent."""
    queue = list(incoming)
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else await asyncio.Event().wait()  # type: ignore[func-returns-value]

    async def send(message: Any) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), 10)
    return sent


async def test_non_http_scopes_reach_the_app_as_they_are() -> None:
    calls: list[tuple[Any, Any, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append((scope, receive, send))

    async def send(message: Any) -> None:
        pass

    middleware = ObskitASGIMiddleware(app)
    for kind in ("websocket", "lifespan"):
        scope = {"type": kind}
        await middleware(scope, receive_nothing, send)
        assert calls[-1][0] is scope and calls[-1][1] is receive_nothing and calls[-1][2] is send


async def test_messages_and_exceptions_reach_the_server_unchanged(
    quiet_memory: InMemoryExporter,
) -> None:
    problem = KeyError("missing")
    start = {"type": "http.response.start", "status": 500, "headers": [(b"x-a", b"1")]}
    body = {"type": "http.response.body", "body": b"partial", "more_body": True}
    sent: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start)
        await send(body)
        raise problem

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": []}
    with pytest.raises(KeyError) as raised:
        await ObskitASGIMiddleware(app, response_request_id=False)(scope, receive_nothing, send)
    assert raised.value is problem
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    assert sent[0] is start and sent[1] is body
    assert start["headers"] == [(b"x-a", b"1")]  # the app's own message is never modified
    [event] = flushed(quiet_memory).errors  # one event, for the exception, not the 500 too
    assert event.exceptions[-1]["type"] == "KeyError"


async def test_an_obskit_failure_never_reaches_the_app(
    quiet_memory: InMemoryExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("obskit bug")

    monkeypatch.setattr(http_core.Exchange, "begin", broken)
    monkeypatch.setattr(http_core.Exchange, "resolve", broken)
    sent: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    await ObskitASGIMiddleware(app)(scope, receive_nothing, send)
    assert [m.get("body") for m in sent] == [None, b"ok"]
    assert diagnostics.problem_counts()["http_begin"] == 1


def test_200_concurrent_requests_each_keep_their_own_context(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    async def fire() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            return await asyncio.gather(
                *(
                    client.get(f"{server}/work/{n}", headers={"X-Request-ID": f"r{n}"})
                    for n in range(200)
                )
            )

    responses = asyncio.run(fire())
    assert sorted(r.status_code for r in responses) == [200] * 100 + [500] * 100
    memory = settled(quiet_memory, spans=200)
    working = [r for r in memory.logs if r.event == "working"]
    assert len(working) == 200
    for record in working:
        assert record.fields["request_id"] == record.fields["mine"]
    assert len(memory.errors) == 100
    for event in memory.errors:
        mine = event.context["request_id"]
        assert event.exceptions[-1]["value"] == f"job {mine[1:]} failed"
        steps = [b["message"] for b in event.breadcrumbs if b["category"] == "step"]
        assert steps == [f"start {mine}", f"done {mine}"]
        assert [b for b in event.breadcrumbs if b["category"] == "request"] == [
            event.breadcrumbs[0]
        ]
        assert event.breadcrumbs[0]["data"]["request_id"] == mine
    assert len({s.trace_id for s in memory.spans}) == 200
    assert sorted(s.attributes["request.id"] for s in memory.spans) == sorted(
        f"r{n}" for n in range(200)
    )


@pytest.mark.parametrize(
    "options",
    [{"record_headers": "user-agent"}, {"request_id_header": ""}, {"route_name": "/users"}],
)
def test_bad_options_fail_at_install(options: dict[str, Any]) -> None:
    with pytest.raises(obskit.ConfigError):
        ObskitASGIMiddleware(receive_nothing, **options)  # type: ignore[arg-type]
