"""ObskitWSGIMiddleware over real servers on loopback (werkzeug's threaded server for a Flask
app, wsgiref for a bare WSGI app) and in process where the point is object identity: request
scope, route-named spans, request ids, trace continuation, error events, iterables closed once."""

from __future__ import annotations

import gc
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
from flask import Flask, Response, jsonify, stream_with_context
from opentelemetry import trace

import obskit
from obskit import diagnostics
from obskit.exporters import InMemoryExporter
from obskit.integrations import ObskitWSGIMiddleware
from obskit.integrations import _http as http_core

from .conftest import PARENT_SPAN_ID, TRACE_ID, TRACEPARENT, flushed, settled, werkzeug_server

log = obskit.get_logger("shop")
STREAM_CHUNKS, STREAM_PAUSE_S = 4, 0.05


def flask_app() -> Flask:
    app = Flask("shop")

    @app.get("/users/<int:user_id>")
    def user(user_id: int) -> Any:
        obskit.add_breadcrumb("db", "SELECT user")
        log.info("user loaded", user_id=user_id)
        return jsonify(context=obskit.current_context())

    @app.get("/boom")
    def boom() -> Any:
        obskit.add_breadcrumb("db", "SELECT boom")
        raise RuntimeError("kaboom")

    @app.get("/unavailable")
    def unavailable() -> Any:
        return "down", 503

    @app.get("/stream")
    def stream() -> Any:
        def chunks() -> Iterator[str]:
            for index in range(STREAM_CHUNKS):
                time.sleep(STREAM_PAUSE_S)
                log.info("chunk", index=index)
                yield f"chunk {index}\n"

        return Response(stream_with_context(chunks()))

    @app.get("/work/<int:number>")
    def work(number: int) -> Any:
        from flask import request

        mine = request.headers["X-Request-ID"]
        obskit.add_breadcrumb("step", f"start {mine}")
        time.sleep(random.uniform(0, 0.01))
        log.info("working", mine=mine)
        obskit.add_breadcrumb("step", f"done {mine}")
        if number % 2:
            raise ValueError(f"job {number} failed")
        return mine

    app.wsgi_app = ObskitWSGIMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with werkzeug_server(flask_app()) as url:
        yield url


def one_span(memory: InMemoryExporter, name: str) -> Any:
    [span] = [s for s in settled(memory, spans=1).spans if s.name == name]
    return span


def test_ok_request_is_a_server_span_named_after_its_rule(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    response = httpx.get(f"{server}/users/42")
    assert response.status_code == 200
    span = one_span(quiet_memory, "GET /users/<int:user_id>")
    assert span.span_kind == "server" and span.status == "unset"
    assert span.attributes["http.route"] == "/users/<int:user_id>"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["request.id"] == response.headers["X-Request-Id"]
    assert response.json()["context"]["request_id"] == response.headers["X-Request-Id"]
    [record] = quiet_memory.logs
    assert record.fields["request_id"] == response.headers["X-Request-Id"]
    assert record.trace_id == span.trace_id


def test_unmatched_path_keeps_a_low_cardinality_name(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    assert httpx.get(f"{server}/no/such/page/93").status_code == 404
    assert one_span(quiet_memory, "GET <unrouted>").attributes["url.path"] == "/no/such/page/93"


def test_handler_exception_gives_flasks_500_and_an_event_with_the_exception(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    response = httpx.get(f"{server}/boom")
    assert response.status_code == 500 and "Internal Server Error" in response.text
    span = one_span(quiet_memory, "GET /boom")
    [event] = quiet_memory.errors
    assert event.exceptions[-1]["type"] == "RuntimeError"
    assert event.context["http"]["route"] == "/boom"
    assert event.context["request_id"] == response.headers["X-Request-Id"]
    assert [b["message"] for b in event.breadcrumbs] == ["GET", "SELECT boom"]
    assert span.status == "error" and [e["name"] for e in span.events] == ["exception"]


def test_5xx_response_without_exception_is_an_error_event(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    assert httpx.get(f"{server}/unavailable").status_code == 503
    span = one_span(quiet_memory, "GET /unavailable")
    [event] = quiet_memory.errors
    assert event.message == "HTTP 503 GET /unavailable" and span.status == "error"


def test_request_id_round_trip(server: str, quiet_memory: InMemoryExporter) -> None:
    response = httpx.get(f"{server}/users/1", headers={"X-Request-ID": "req-abc.123"})
    assert response.headers["X-Request-Id"] == "req-abc.123"
    assert response.json()["context"]["request_id"] == "req-abc.123"


@pytest.mark.parametrize("bad", ["x" * 129, "has space", "semi;colon", b"caf\xc3\xa9"])
def test_malformed_request_id_is_replaced(
    server: str, quiet_memory: InMemoryExporter, bad: str | bytes
) -> None:
    response = httpx.get(f"{server}/users/1", headers={"X-Request-ID": bad})
    fresh = response.headers["X-Request-Id"]
    assert len(fresh) == 32 and response.json()["context"]["request_id"] == fresh


def test_trace_continues_from_incoming_traceparent(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    response = httpx.get(f"{server}/users/5", headers={"traceparent": TRACEPARENT})
    span = one_span(quiet_memory, "GET /users/<int:user_id>")
    assert span.trace_id == TRACE_ID and span.parent_span_id == PARENT_SPAN_ID
    assert response.headers["X-Request-Id"] == TRACE_ID


@pytest.mark.parametrize(
    "bad",
    [f"00-{TRACE_ID[:-1]}z-{PARENT_SPAN_ID}-01", f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01" + "0" * 300],
)
def test_malformed_traceparent_starts_a_fresh_trace(
    server: str, quiet_memory: InMemoryExporter, bad: str
) -> None:
    httpx.get(f"{server}/users/5", headers={"traceparent": bad})
    span = one_span(quiet_memory, "GET /users/<int:user_id>")
    assert span.trace_id != TRACE_ID and span.parent_span_id is None


def test_streaming_response_is_timed_to_the_end_of_iteration(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    with httpx.stream("GET", f"{server}/stream") as response:
        body = b"".join(response.iter_bytes())
    assert body.count(b"chunk") == STREAM_CHUNKS
    span = one_span(quiet_memory, "GET /stream")
    assert span.duration_ms >= STREAM_CHUNKS * STREAM_PAUSE_S * 1000 * 0.9
    chunks = [r for r in quiet_memory.logs if r.event == "chunk"]
    assert len(chunks) == STREAM_CHUNKS  # logged while iterating: still inside the request
    assert {r.fields["request_id"] for r in chunks} == {response.headers["X-Request-Id"]}


class Body:
    """A response iterable that counts how often it is closed."""

    def __init__(self, chunks: list[bytes], fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if index == self.fail_at:
                raise OSError("disk gone")
            yield chunk

    def close(self) -> None:
        self.closed += 1


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_iterable_is_closed_exactly_once_over_wsgiref(quiet_memory: InMemoryExporter) -> None:
    bodies: list[Body] = []

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        start_response("200 OK", [("Content-Type", "text/plain")])
        bodies.append(
            Body([b"a", b"b", b"c"], fail_at=2 if "fail" in environ["PATH_INFO"] else None)
        )
        return bodies[-1]

    server = make_server("127.0.0.1", 0, ObskitWSGIMiddleware(app), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        assert httpx.get(f"{url}/ok").content == b"abc"
        try:  # wsgiref logs the error and cuts the response short
            cut: bytes | None = httpx.get(f"{url}/fail").content
        except httpx.HTTPError:  # or the client sees a broken response: cut short too
            cut = None
        assert cut != b"abc"
        memory = settled(quiet_memory, spans=2)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    assert [body.closed for body in bodies] == [1, 1]
    [event] = memory.errors
    assert event.exceptions[-1]["type"] == "OSError"
    assert sorted(s.status for s in memory.spans) == ["error", "unset"]


def test_wrapped_iterable_ends_once_whatever_the_server_does(
    quiet_memory: InMemoryExporter,
) -> None:
    body = Body([b"a", b"b"])
    statuses: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        start_response("200 OK", [])
        return body

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    result: Any = ObskitWSGIMiddleware(app)(environ, lambda s, h, e=None: statuses.append(s))
    assert next(iter(result)) == b"a"
    # The server stops half way: the request is still open, but not in this thread's context.
    assert obskit.current_context() == {}
    assert not trace.get_current_span().get_span_context().is_valid
    result.close()
    result.close()
    assert body.closed == 1 and statuses == ["200 OK"]
    [span] = flushed(quiet_memory).spans
    assert span.attributes["http.response.status_code"] == 200


def test_a_response_dropped_unclosed_is_garbage_not_an_error(
    quiet_memory: InMemoryExporter, caplog: pytest.LogCaptureFixture
) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"never read"

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    result = ObskitWSGIMiddleware(app)(environ, lambda *a: None)  # type: ignore[arg-type]
    next(iter(result))
    cycle: list[Any] = [result]
    cycle.append(cycle)  # collected by the cycle collector, finalizers in no set order
    del result, cycle
    gc.collect()
    assert obskit.current_context() == {}
    assert flushed(quiet_memory).spans == []  # never finished: not reported (PEP 3333 says close)
    assert "Failed to detach context" not in caplog.text


def test_len_is_passed_through_so_servers_can_set_content_length() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"hello"]

    def generator_app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"hello"

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    assert len(ObskitWSGIMiddleware(app)(environ, lambda *a: None)) == 1  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        len(ObskitWSGIMiddleware(generator_app)(environ, lambda *a: None))  # type: ignore[arg-type]


def test_exceptions_and_headers_reach_the_server_unchanged(quiet_memory: InMemoryExporter) -> None:
    problem = LookupError("nope")
    headers = [("Content-Type", "text/plain")]
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("500 Internal Server Error", headers)
        raise problem

    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/x"}
    with pytest.raises(LookupError) as raised:
        ObskitWSGIMiddleware(app, response_request_id=False)(
            environ, lambda status, h, e=None: seen.append(h)
        )
    assert raised.value is problem and raised.value.__context__ is None
    assert seen == [headers] and seen[0] is headers
    [event] = flushed(quiet_memory).errors  # the exception, not the 500 as well
    assert event.exceptions[-1]["type"] == "LookupError"


def test_an_obskit_failure_never_reaches_the_app(
    quiet_memory: InMemoryExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("obskit bug")

    monkeypatch.setattr(http_core.Exchange, "begin", broken)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"ok"]

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    assert list(ObskitWSGIMiddleware(app)(environ, lambda *a: None)) == [b"ok"]  # type: ignore[arg-type]
    assert diagnostics.problem_counts()["http_begin"] == 1


def test_200_concurrent_requests_each_keep_their_own_context(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    with httpx.Client(timeout=60) as client, ThreadPoolExecutor(32) as pool:
        responses = list(
            pool.map(
                lambda n: client.get(f"{server}/work/{n}", headers={"X-Request-ID": f"r{n}"}),
                range(200),
            )
        )
    assert sorted(r.status_code for r in responses) == [200] * 100 + [500] * 100
    memory = settled(quiet_memory, spans=200)
    working = [r for r in memory.logs if r.event == "working"]
    assert len(working) == 200
    assert all(r.fields["request_id"] == r.fields["mine"] for r in working)
    assert len(memory.errors) == 100
    for event in memory.errors:
        mine = event.context["request_id"]
        assert event.exceptions[-1]["value"] == f"job {mine[1:]} failed"
        steps = [b["message"] for b in event.breadcrumbs if b["category"] == "step"]
        assert steps == [f"start {mine}", f"done {mine}"]
        assert event.breadcrumbs[0]["data"]["request_id"] == mine
    assert len({s.trace_id for s in memory.spans}) == 200
    assert sorted(s.attributes["request.id"] for s in memory.spans) == sorted(
        f"r{n}" for n in range(200)
    )
