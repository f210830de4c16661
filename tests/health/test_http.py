"""The endpoints over real HTTP, against each of the three ways to serve them: ``serve()`` (the
standard-library server), a real ASGI server (uvicorn) and a real WSGI server (wsgiref).

Each answers ``/health``, ``/health/live`` and ``/health/ready`` with ``application/health+json``
per the IETF draft: 200 for pass and warn, 503 for fail."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from obskit.health import CheckResult, HealthRegistry
from obskit.health.http import make_asgi_app

from ..loopback import uvicorn_server

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@dataclass
class Service:
    """A registry behind a real server, and switches to make its checks fail."""

    registry: HealthRegistry
    url: str
    state: dict[str, bool]


def build_registry() -> tuple[HealthRegistry, dict[str, bool]]:
    state = {"db": True, "search": True, "deadlock": False}
    registry = HealthRegistry(cache_ttl_s=0)
    registry.register("db", lambda: state["db"], tags=["ready"], component_type="datastore")

    async def search() -> bool:
        await asyncio.sleep(0)
        return state["search"]

    registry.register("search", search, critical=False)
    registry.register("deadlock", lambda: not state["deadlock"], tags=["live"])
    return registry, state


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_stdlib(registry: HealthRegistry, **options: Any) -> Iterator[str]:
    with registry.serve("127.0.0.1", 0, **options) as server:
        assert server.port > 0
        yield server.url


def serve_wsgiref(registry: HealthRegistry, **options: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, registry.wsgi_app(**options), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def serve_uvicorn(registry: HealthRegistry, **options: Any) -> Iterator[str]:
    with uvicorn_server(registry.asgi_app(**options)) as url:
        yield url


SERVERS = {"serve": serve_stdlib, "uvicorn": serve_uvicorn, "wsgiref": serve_wsgiref}


@pytest.fixture(params=list(SERVERS))
def service(request: pytest.FixtureRequest) -> Iterator[Service]:
    registry, state = build_registry()
    serving = SERVERS[request.param](registry)
    url = next(serving)
    yield Service(registry, url, state)
    for _ in serving:
        pass
    registry.close()


def get(url: str, method: str = "GET", **headers: str) -> tuple[int, Message, bytes]:
    """Status, headers (names case-insensitive) and body of a request."""
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def health(url: str, **headers: str) -> tuple[int, dict[str, Any]]:
    status, response_headers, body = get(url, **headers)
    assert response_headers["Content-Type"] == "application/health+json"
    assert response_headers["Cache-Control"] == "no-store"
    doc = json.loads(body)
    assert_ietf_document(doc)
    return status, doc


def assert_ietf_document(doc: dict[str, Any]) -> None:
    """The draft's shape: a status, and checks keyed name:measurement holding detail arrays."""
    assert doc["status"] in ("pass", "warn", "fail")
    if "checks" in doc:  # a verbose report says what is wrong
        assert ("output" in doc) == (doc["status"] != "pass")
    for key, details in doc.get("checks", {}).items():
        assert key.count(":") <= 1 and not key.startswith(":")
        assert isinstance(details, list) and len(details) == 1
        (entry,) = details
        assert entry["status"] in ("pass", "warn", "fail")
        assert RFC3339.match(entry["time"])
        assert "observedUnit" not in entry or "observedValue" in entry
        assert ("output" in entry) == (entry["status"] != "pass")


def test_health_answers_200_with_the_full_report_when_all_pass(service: Service) -> None:
    status, doc = health(f"{service.url}/health")
    assert status == 200
    assert doc["status"] == "pass"
    assert set(doc["checks"]) == {
        "db:responseTime",
        "search:responseTime",
        "deadlock:responseTime",
    }
    db = doc["checks"]["db:responseTime"][0]
    assert db["componentType"] == "datastore" and db["observedUnit"] == "ms"
    assert isinstance(db["observedValue"], int | float)


def test_a_warning_is_still_200_and_a_critical_failure_is_503(service: Service) -> None:
    service.state["search"] = False  # non-critical
    status, doc = health(f"{service.url}/health")
    assert (status, doc["status"]) == (200, "warn")
    assert doc["output"] == "search: returned False"
    service.state["db"] = False
    status, doc = health(f"{service.url}/health")
    assert (status, doc["status"]) == (503, "fail")
    assert doc["checks"]["db:responseTime"][0]["output"] == "returned False"


def test_ready_runs_only_checks_tagged_ready(service: Service) -> None:
    service.state["search"] = False
    status, doc = health(f"{service.url}/health/ready")
    assert (status, doc["status"], list(doc["checks"])) == (200, "pass", ["db:responseTime"])
    service.state["db"] = False
    assert health(f"{service.url}/health/ready")[0] == 503


def test_live_ignores_dependencies_and_runs_only_checks_tagged_live(service: Service) -> None:
    service.state["db"] = False
    status, doc = health(f"{service.url}/health/live")
    assert (status, doc["status"], list(doc["checks"])) == (
        200,
        "pass",
        ["deadlock:responseTime"],
    )
    service.state["deadlock"] = True
    assert health(f"{service.url}/health/live")[0] == 503


def test_startup_with_no_startup_checks_passes_and_an_unknown_group_is_404(
    service: Service,
) -> None:
    assert health(f"{service.url}/health/startup") == (200, {"status": "pass", "checks": {}})
    status, _, body = get(f"{service.url}/health/raedy")
    assert status == 404 and json.loads(body)["status"] == "fail"
    assert get(f"{service.url}/metrics")[0] == 404


def test_head_answers_the_status_without_a_body_and_other_methods_are_405(
    service: Service,
) -> None:
    service.state["db"] = False
    status, headers, body = get(f"{service.url}/health", method="HEAD")
    assert (status, headers["Content-Type"], body) == (503, "application/health+json", b"")
    status, headers, _ = get(f"{service.url}/health", method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("server", list(SERVERS))
def test_verbose_false_hides_the_details_but_not_the_status(server: str) -> None:
    registry, state = build_registry()
    state["db"] = False
    serving = SERVERS[server](registry, verbose=False)
    url = next(serving)
    try:
        assert health(f"{url}/health") == (503, {"status": "fail"})
    finally:
        for _ in serving:
            pass
        registry.close()


@pytest.mark.parametrize("server", list(SERVERS))
def test_verbose_can_depend_on_the_caller_being_authorised(server: str) -> None:
    registry, _ = build_registry()
    serving = SERVERS[server](
        registry, verbose=lambda headers: headers.get("authorization") == "Bearer s3cret"
    )
    url = next(serving)
    try:
        assert health(f"{url}/health") == (200, {"status": "pass"})
        _, doc = health(f"{url}/health", Authorization="Bearer s3cret")
        assert "db:responseTime" in doc["checks"]
    finally:
        for _ in serving:
            pass
        registry.close()


async def test_the_asgi_app_answers_under_the_prefix_it_is_mounted_at() -> None:
    registry, _ = build_registry()
    app = make_asgi_app(registry, verbose=True)

    async def call(path: str, root_path: str) -> tuple[int, dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": path, "root_path": root_path}
        await app(scope, receive, send)
        return sent[0]["status"], json.loads(sent[1]["body"])

    # Starlette's Mount keeps the full path and extends root_path; older servers strip it.
    for path, root in [("/ops/ready", "/ops"), ("/ready", "/ops"), ("/health/ready", "")]:
        status, doc = await call(path, root)
        assert (status, list(doc["checks"])) == (200, ["db:responseTime"])
    status, doc = await call("/ops", "/ops")
    assert len(doc["checks"]) == 3
    registry.close()


def test_what_checks_write_is_scrubbed_before_it_is_served_but_names_are_not() -> None:
    registry = HealthRegistry()
    registry.register("auth", lambda: CheckResult.fail("login with password=hunter2 refused"))
    with registry.serve() as server:
        _, doc = health(f"{server.url}/health")
    assert (
        doc["checks"]["auth:responseTime"][0]["output"] == "login with password=[Filtered] refused"
    )
    assert "hunter2" not in doc["output"]
    registry.close()


# -- exposure: who sees details, what the server says about itself ---------------------------


@pytest.mark.parametrize("server", list(SERVERS))
def test_by_default_loopback_callers_see_details_and_proxied_ones_only_the_status(
    server: str,
) -> None:
    registry, _ = build_registry()
    serving = SERVERS[server](registry)
    url = next(serving)
    try:
        _, doc = health(f"{url}/health")
        assert "db:responseTime" in doc["checks"]  # this test is a loopback client
        assert health(f"{url}/health", **{"X-Forwarded-For": "203.0.113.9"}) == (
            200,
            {"status": "pass"},
        )
        assert health(f"{url}/health", Forwarded="for=203.0.113.9") == (200, {"status": "pass"})
    finally:
        for _ in serving:
            pass
        registry.close()


@pytest.mark.parametrize("server", list(SERVERS))
def test_a_token_shows_details_to_a_remote_caller_that_presents_it(server: str) -> None:
    registry, _ = build_registry()
    serving = SERVERS[server](registry, token="t0ken-for-probes")
    url = next(serving)
    remote = {"X-Forwarded-For": "203.0.113.9"}
    try:
        assert health(f"{url}/health", **remote) == (200, {"status": "pass"})
        wrong = health(f"{url}/health", Authorization="Bearer nope", **remote)
        assert wrong == (200, {"status": "pass"})
        _, doc = health(f"{url}/health", Authorization="Bearer t0ken-for-probes", **remote)
        assert "db:responseTime" in doc["checks"]
    finally:
        for _ in serving:
            pass
        registry.close()


async def test_an_asgi_client_off_the_loopback_sees_only_the_status() -> None:
    registry, _ = build_registry()
    app = make_asgi_app(registry)

    async def call(client: tuple[str, int] | None) -> dict[str, Any]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/health", "client": client}
        await app(scope, receive, send)
        return json.loads(sent[1]["body"])  # type: ignore[no-any-return]

    assert await call(("203.0.113.9", 5000)) == {"status": "pass"}
    assert await call(None) == {"status": "pass"}
    assert "checks" in await call(("::1", 5000))
    assert "checks" in await call(("::ffff:127.0.0.1", 5000))
    registry.close()


def test_a_404_does_not_echo_the_path_and_no_server_version_is_sent() -> None:
    registry, _ = build_registry()
    with registry.serve("127.0.0.1", 0) as server:
        status, headers, body = get(f"{server.url}/health/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        assert status == 404 and b"script" not in body.lower()
        _, headers, _ = get(f"{server.url}/health")
        assert headers["Server"] == "obskit"
        assert "Python" not in headers["Server"] and "WSGIServer" not in headers["Server"]
    registry.close()


def test_idle_sockets_time_out_and_connections_past_the_thread_bound_are_closed() -> None:
    import socket
    import time

    from obskit import diagnostics
    from obskit.health import http as health_http

    bound = health_http._ThreadingServer.max_threads
    registry, _ = build_registry()
    with registry.serve("127.0.0.1", 0) as server:
        handler = server._server.RequestHandlerClass
        handler.timeout = 2.0  # type: ignore[attr-defined]
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(bound + 8)]
        try:
            deadline = time.monotonic() + 60
            while diagnostics.problem_counts().get("health.server_busy", 0) < 8:
                assert time.monotonic() < deadline, diagnostics.problem_counts()
                time.sleep(0.05)
            # the idle clients are dropped after the read timeout: the server answers again
            deadline = time.monotonic() + 60
            while True:
                try:
                    if get(f"{server.url}/health")[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline
                time.sleep(0.2)
        finally:
            for sock in idle:
                sock.close()
            handler.timeout = 10.0  # type: ignore[attr-defined]
    registry.close()
    assert "health.server" not in diagnostics.problem_counts()  # timeouts are not failures
