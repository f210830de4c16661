"""ObskitDjangoMiddleware with Django's test client and with a real ``runserver`` on loopback:
route templates from ``resolver_match``, ``http.route`` on logs, the view's exception and the
view as the culprit of a 5xx, excluded paths, request ids."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import obskit
from obskit.exporters import InMemoryExporter

from .conftest import flushed, settled, uvicorn_server

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


@pytest.fixture(scope="module")
def django_site() -> None:
    """The test project (django_site/) set up in this process."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")
    import django

    django.setup()


@pytest.fixture(scope="module")
def client(django_site: None) -> Any:
    from django.test import Client

    return Client(raise_request_exception=False)


@pytest.fixture(scope="module")
def async_client(django_site: None) -> Any:
    from django.test import AsyncClient

    return AsyncClient(raise_request_exception=False)


def server_spans(memory: InMemoryExporter) -> list[Any]:
    return [s for s in flushed(memory).spans if s.span_kind == "server"]


def test_requests_are_named_by_their_url_pattern(
    client: Any, quiet_memory: InMemoryExporter
) -> None:
    assert client.get("/users/7/").status_code == 200
    assert client.get("/blog/2024/hello-world/").status_code == 200
    assert client.get("/no/such/page/").status_code == 404
    assert client.get("/health/").status_code == 200  # excluded by default
    names = [s.name for s in server_spans(quiet_memory)]
    assert names == [
        "GET /users/<int:user_id>/",
        "GET /blog/<int:year>/<slug:slug>/",
        "GET <unrouted>",
    ]
    [span] = [s for s in quiet_memory.spans if s.name.startswith("GET /users")]
    assert span.attributes["http.route"] == "/users/<int:user_id>/"
    assert span.attributes["http.response.status_code"] == 200
    [log] = quiet_memory.logs
    assert log.fields["http.route"] == "/users/<int:user_id>/"
    assert log.fields["request_id"] == span.attributes["request.id"]


def test_request_id_round_trip(client: Any, quiet_memory: InMemoryExporter) -> None:
    response = client.get("/users/1/", headers={"X-Request-ID": "req-42"})
    assert response["X-Request-ID"] == "req-42"
    assert server_spans(quiet_memory)[0].attributes["request.id"] == "req-42"


def test_view_exception_is_captured_with_the_view_as_culprit(
    client: Any, quiet_memory: InMemoryExporter
) -> None:
    assert client.get("/boom/").status_code == 500
    [event] = flushed(quiet_memory).errors
    assert event.title == "RuntimeError: kaboom"
    assert event.culprit.endswith("views in boom")
    assert event.context["http"]["route"] == "/boom/"
    [span] = server_spans(quiet_memory)
    assert span.name == "GET /boom/" and span.status == "error"


def test_5xx_response_is_grouped_by_route_with_the_view_as_culprit(
    client: Any, quiet_memory: InMemoryExporter
) -> None:
    for _ in range(2):
        assert client.get("/unavailable/").status_code == 503
    events = flushed(quiet_memory).errors
    assert [e.title for e in events] == ["HTTP 503 GET /unavailable/"] * 2
    assert events[0].fingerprint == events[1].fingerprint
    assert events[0].culprit.endswith("views in unavailable")


def test_a_streaming_response_makes_its_parts_inside_the_request(
    client: Any, quiet_memory: InMemoryExporter
) -> None:
    response = client.get("/stream/")
    assert server_spans(quiet_memory) == []  # still streaming: the request is not over
    assert b"".join(response.streaming_content) == b"part 0\npart 1\npart 2\n"
    [span] = server_spans(quiet_memory)
    assert span.name == "GET /stream/"
    parts = [r for r in quiet_memory.logs if r.event == "part sent"]
    assert [r.fields["http.route"] for r in parts] == ["/stream/"] * 3
    assert {r.fields["request_id"] for r in parts} == {span.attributes["request.id"]}


# -- async: the middleware in Django's async chain (AsyncClient, uvicorn) ----------------------


def test_the_middleware_is_a_coroutine_in_an_async_chain_and_a_function_in_a_sync_one(
    django_site: None,
) -> None:
    from asgiref.sync import iscoroutinefunction

    from obskit.integrations.django import ObskitDjangoMiddleware

    async def async_view(request: Any) -> Any:
        return None

    assert ObskitDjangoMiddleware.sync_capable and ObskitDjangoMiddleware.async_capable
    assert iscoroutinefunction(ObskitDjangoMiddleware(async_view))
    assert not iscoroutinefunction(ObskitDjangoMiddleware(lambda request: None))


async def test_an_async_view_is_named_by_its_pattern_and_its_logs_carry_the_route(
    async_client: Any, quiet_memory: InMemoryExporter
) -> None:
    from django_site import views

    views.async_view_threads.clear()
    response = await async_client.get("/async/users/7/", headers={"X-Request-ID": "req-async"})
    assert response.status_code == 200 and response["X-Request-ID"] == "req-async"
    assert views.async_view_threads == [threading.get_ident()]  # on the event loop's thread
    [span] = server_spans(quiet_memory)
    assert span.name == "GET /async/users/<int:user_id>/"
    assert span.attributes["http.route"] == "/async/users/<int:user_id>/"
    assert span.attributes["request.id"] == "req-async"
    [log] = quiet_memory.logs
    assert log.event == "async user loaded"
    assert log.fields["http.route"] == "/async/users/<int:user_id>/"
    assert log.fields["request_id"] == "req-async"


async def test_an_async_views_exception_is_captured_with_the_view_as_culprit(
    async_client: Any, quiet_memory: InMemoryExporter
) -> None:
    response = await async_client.get("/async/boom/", headers={"X-Request-ID": "req-boom"})
    assert response.status_code == 500
    [event] = flushed(quiet_memory).errors
    assert event.title == "RuntimeError: async kaboom"
    assert event.culprit.endswith("views in async_boom")
    assert event.context["http"]["route"] == "/async/boom/"
    [span] = server_spans(quiet_memory)
    assert span.name == "GET /async/boom/" and span.status == "error"
    # captured in Django's thread for process_exception, still inside the request
    assert event.context["request_id"] == "req-boom" and event.trace_id == span.trace_id


async def test_an_async_streaming_response_ends_the_request_when_django_closes_it(
    async_client: Any, quiet_memory: InMemoryExporter
) -> None:
    response = await async_client.get("/async/stream/")
    assert server_spans(quiet_memory) == []  # still streaming: the request is not over
    body = b"".join([part async for part in response.streaming_content])
    assert body == b"part 0\npart 1\npart 2\n"
    [span] = server_spans(quiet_memory)
    assert span.name == "GET /async/stream/"
    parts = [r for r in quiet_memory.logs if r.event == "part sent"]
    assert [r.fields["http.route"] for r in parts] == ["/async/stream/"] * 3
    assert {r.fields["request_id"] for r in parts} == {span.attributes["request.id"]}
    assert "http_finish" not in str(obskit.pipeline_stats()["problems"])


# Django warns that it reads a sync streaming body whole under ASGI: expected for /stream/.
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
def test_django_asgi_under_uvicorn_on_loopback(
    django_site: None, quiet_memory: InMemoryExporter
) -> None:
    from django.core.asgi import get_asgi_application

    with uvicorn_server(get_asgi_application(), lifespan="off") as url:
        user = httpx.get(f"{url}/async/users/5/", timeout=30)
        assert user.status_code == 200 and user.headers["x-request-id"]
        assert httpx.get(f"{url}/async/boom/", timeout=30).status_code == 500
        assert httpx.get(f"{url}/users/6/", timeout=30).status_code == 200  # a sync view
        assert httpx.get(f"{url}/async/stream/", timeout=30).text.count("part") == 3
        assert httpx.get(f"{url}/stream/", timeout=30).text.count("part") == 3  # sync parts
        assert httpx.get(f"{url}/health/", timeout=30).status_code == 200  # excluded
        settled(quiet_memory, spans=5)
    names = sorted(s.name for s in server_spans(quiet_memory))
    assert names == [
        "GET /async/boom/",
        "GET /async/stream/",
        "GET /async/users/<int:user_id>/",
        "GET /stream/",
        "GET /users/<int:user_id>/",
    ]
    [error] = quiet_memory.errors
    assert error.title == "RuntimeError: async kaboom"
    assert error.culprit.endswith("views in async_boom")
    routes = {r.event: r.fields.get("http.route") for r in quiet_memory.logs}
    assert routes["async user loaded"] == "/async/users/<int:user_id>/"
    assert routes["user loaded"] == "/users/<int:user_id>/"
    parts = [r.fields.get("http.route") for r in quiet_memory.logs if r.event == "part sent"]
    assert sorted(parts) == ["/async/stream/"] * 3 + ["/stream/"] * 3
    [loaded] = [r for r in quiet_memory.logs if r.event == "async user loaded"]
    assert loaded.fields["request_id"] == user.headers["x-request-id"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_runserver(env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    """``runserver`` on a free loopback port, once it answers (on the excluded /health/, which
    leaves no signal); a port another process took between the probe and the bind is replaced."""
    for attempt in range(3):
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health/", timeout=30)
                return server, port
            except httpx.TransportError:
                if server.poll() is not None:
                    error = server.stderr.read() if server.stderr else ""
                    if "already in use" in error and attempt < 2:
                        break
                    raise AssertionError(error) from None
                if time.monotonic() > deadline:
                    server.kill()
                    raise AssertionError("runserver did not start") from None
                time.sleep(0.1)
    raise AssertionError("no free port for runserver")


def test_real_runserver_on_loopback(tmp_path: Path) -> None:
    pytest.importorskip("django")
    out = tmp_path / "signals.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBSKIT_", "OTEL_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="django_site.settings",
        PYTHONPATH=os.pathsep.join([str(HERE), str(SRC), env.get("PYTHONPATH", "")]),
        OBSKIT_TEST_JSONL=str(out),
    )
    server, port = start_runserver(env)
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/users/5/", timeout=30)
        assert response.status_code == 200 and response.headers["x-request-id"]
        assert httpx.get(f"http://127.0.0.1:{port}/boom/", timeout=30).status_code == 500
        assert httpx.get(f"http://127.0.0.1:{port}/health/", timeout=30).status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    names = sorted(r["name"] for r in records if r["signal"] == "span")
    assert names == ["GET /boom/", "GET /users/<int:user_id>/"]  # /health/ is excluded
    [error] = [r for r in records if r["signal"] == "error"]
    assert error["title"] == "RuntimeError: kaboom"
    assert error["context"]["http"]["route"] == "/boom/"
    [log] = [r for r in records if r["signal"] == "log" and r["event"] == "user loaded"]
    assert log["http.route"] == "/users/<int:user_id>/"
    assert log["request_id"] == response.headers["x-request-id"]
