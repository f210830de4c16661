"""Route templates, one server span, excluded paths, ``http.route`` on logs and 5xx culprits,
on a current FastAPI app (its own telemetry on) served by uvicorn on loopback."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, HTTPException
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import obskit
from obskit.exporters import InMemoryExporter
from obskit.integrations import ObskitASGIMiddleware

from ..conftest import RecordingSink
from .conftest import settled, uvicorn_server

log = obskit.get_logger("shop")


async def page(request: Request) -> PlainTextResponse:
    log.info("page served")
    return PlainTextResponse("page")


async def raw_files(scope: Any, receive: Any, send: Any) -> None:
    await PlainTextResponse("file")(scope, receive, send)


def shop() -> FastAPI:
    app = FastAPI()
    v1 = APIRouter(prefix="/v1")

    @v1.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, Any]:
        log.info("item loaded", item_id=item_id)
        return {"id": item_id}

    app.include_router(v1)

    @app.get("/flaky")
    async def flaky() -> None:
        raise HTTPException(status_code=502, detail="upstream down")

    @app.get("/health")
    async def health() -> dict[str, str]:
        log.info("probed")
        return {"status": "pass"}

    @app.get("/metrics")
    async def scrape() -> str:
        return ""

    sub = FastAPI()

    @sub.get("/things/{thing_id}")
    async def thing(thing_id: int) -> dict[str, Any]:
        return {"id": thing_id}

    app.mount("/sub", sub)
    app.mount("/pages", Starlette(routes=[Route("/{slug}", page)]))
    app.mount("/files", raw_files)
    app.add_middleware(ObskitASGIMiddleware)
    return app


EXPECTED = {
    "/v1/items/7": (200, "GET /v1/items/{item_id}"),
    "/sub/things/3": (200, "GET /sub/things/{thing_id}"),
    "/sub/missing": (404, "GET /sub/{path}"),
    "/pages/about": (200, "GET /pages/{slug}"),
    "/files/a/b.txt": (200, "GET /files/{path}"),
    "/no/such/page": (404, "GET <unrouted>"),
    "/flaky": (502, "GET /flaky"),
}


@pytest.fixture(scope="module")
def server() -> Any:
    with uvicorn_server(shop()) as url:
        yield url


def test_routed_mounted_and_unmatched_paths_are_named_by_template(
    server: str, quiet_memory: InMemoryExporter, sink: RecordingSink
) -> None:
    for path, (status, _) in EXPECTED.items():
        assert httpx.get(server + path).status_code == status
    spans = settled(quiet_memory, spans=len(EXPECTED)).spans
    servers = [s for s in spans if s.span_kind == "server"]
    assert sorted(s.name for s in servers) == sorted(name for _, name in EXPECTED.values())
    durations = [
        labels for _, name, _, labels in sink.points if name == "http.server.request.duration"
    ]
    assert sorted(d.get("http.route", "") for d in durations) == sorted(
        name.split(" ", 1)[1].replace("<unrouted>", "") for _, name in EXPECTED.values()
    )
    assert {
        "http.request.method": "GET",
        "http.route": "/flaky",
        "http.response.status_code": 502,
        "error.type": "502",
    } in durations


def test_one_server_span_and_one_root_per_request_with_fastapi_telemetry_on(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    for _ in range(3):
        assert httpx.get(f"{server}/v1/items/1").status_code == 200
    spans = settled(quiet_memory, spans=3).spans
    per_trace = Counter(s.trace_id for s in spans if s.parent_span_id is None)
    assert len(per_trace) == 3 and set(per_trace.values()) == {1}
    servers = [s for s in spans if s.span_kind == "server"]
    assert len(servers) == 3
    assert all(s.attributes["http.route"] == "/v1/items/{item_id}" for s in servers)
    assert all("request.id" in s.attributes for s in servers)  # obskit's request, joined


def test_http_route_is_on_every_log_record_inside_a_request(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    assert httpx.get(f"{server}/v1/items/9").status_code == 200
    assert httpx.get(f"{server}/pages/home").status_code == 200
    logs = settled(quiet_memory, spans=2).logs
    routes = {r.event: r.fields.get("http.route") for r in logs}
    assert routes == {"item loaded": "/v1/items/{item_id}", "page served": "/pages/{slug}"}
    [item] = [r for r in logs if r.event == "item loaded"]
    assert item.fields["path"] == "/v1/items/9"  # the raw path stays alongside


def test_excluded_paths_stay_out_of_traces_and_request_metrics(
    server: str, quiet_memory: InMemoryExporter, sink: RecordingSink
) -> None:
    assert httpx.get(f"{server}/health").status_code == 200
    assert httpx.get(f"{server}/metrics").status_code == 200
    assert httpx.get(f"{server}/v1/items/2").status_code == 200  # the marker after them
    spans = settled(quiet_memory, spans=1).spans
    assert {s.name for s in spans if s.span_kind == "server"} == {"GET /v1/items/{item_id}"}
    assert not any("/health" in str(s.attributes.get("url.path")) for s in spans)
    request_points = [
        labels for _, name, _, labels in sink.points if name.startswith(("http.server", "request."))
    ]
    assert all(
        "health" not in str(labels) and "metrics" not in str(labels) for labels in request_points
    )
    assert [r.event for r in quiet_memory.logs] == ["probed", "item loaded"]  # logs still flow


def test_http_exception_5xx_is_grouped_by_route_with_the_handler_as_culprit(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    for _ in range(2):
        assert httpx.get(f"{server}/flaky").status_code == 502
    errors = settled(quiet_memory, spans=2).errors
    assert len(errors) == 2 and errors[0].fingerprint == errors[1].fingerprint
    event = errors[0]
    assert event.culprit.endswith("in shop.<locals>.flaky")
    assert event.title == "HTTP 502 GET /flaky"
    assert event.context["http"] == {
        "method": "GET",
        "route": "/flaky",
        "status_code": 502,
        "headers": {"user-agent": f"python-httpx/{httpx.__version__}"},
    }
    [group] = [g for g in obskit.errors.groups() if g.fingerprint == event.fingerprint]
    assert group.count == 2


def test_exclude_paths_must_be_paths() -> None:
    with pytest.raises(obskit.ConfigError, match="starting with '/'"):
        ObskitASGIMiddleware(shop(), exclude_paths=["health"])
    with pytest.raises(obskit.ConfigError, match="list of paths"):
        ObskitASGIMiddleware(shop(), exclude_paths="/health")


def test_wrapped_around_fastapi_obskit_span_is_the_only_server_span(
    quiet_memory: InMemoryExporter,
) -> None:
    api = FastAPI()

    @api.get("/carts/{cart_id}")
    async def cart(cart_id: int) -> dict[str, Any]:
        log.info("cart loaded")
        return {"id": cart_id}

    with uvicorn_server(ObskitASGIMiddleware(api)) as url:
        for _ in range(2):
            assert httpx.get(f"{url}/carts/3").status_code == 200
    spans = settled(quiet_memory, spans=2).spans
    assert [(s.name, s.scope, s.parent_span_id) for s in spans] == [
        ("GET /carts/{cart_id}", "obskit", None)
    ] * 2
    assert all(r.span_id in {s.span_id for s in spans} for r in quiet_memory.logs)
