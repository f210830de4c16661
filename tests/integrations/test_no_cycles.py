"""A finished request leaves no reference cycle, and nothing a server keeps holds it.

Its objects go when the last reference does.

A cycle per request (an exchange whose request holds the exchange's bound method, say) is
only freed by the garbage collector: in a busy server that means more collections, full ones
included, and the server's own per-request objects kept alive with it. Each test runs
requests with the collector's finds saved, and looks for anything of the request's in them.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

import obskit
from obskit.exporters import InMemoryExporter
from obskit.integrations import ObskitASGIMiddleware, ObskitWSGIMiddleware


@pytest.fixture(autouse=True)
def setup() -> Iterator[InMemoryExporter]:
    memory = InMemoryExporter()
    obskit.init(service="cycles", exporters=[memory], install_hooks=False)
    yield memory
    obskit.shutdown()


def cyclic_garbage(run: Callable[[], None]) -> list[str]:
    """Type names of obskit's and OpenTelemetry's objects ``run`` left in reference cycles
    (after one warm-up run; the test client and event loop make cycles of their own)."""
    run()
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        run()
        gc.collect()
        found = [f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage]
        found = [name for name in found if name.startswith(("obskit.", "opentelemetry."))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()
    return found


def _starlette() -> Starlette:
    async def item(request: Request) -> JSONResponse:
        obskit.get_logger("svc").info("item served", item_id=request.path_params["item_id"])
        return JSONResponse({"id": request.path_params["item_id"]})

    async def broken(request: Request) -> PlainTextResponse:
        return PlainTextResponse("no", status_code=503)

    app = Starlette(
        routes=[Route("/items/{item_id:int}", item), Route("/broken", broken)],
    )
    app.add_middleware(ObskitASGIMiddleware)
    return app


def _asgi_requests(app: Any, paths: list[str]) -> Callable[[], None]:
    async def go() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            responses = await asyncio.gather(*(client.get(path) for path in paths))
        assert all(r.status_code in (200, 503) for r in responses)

    return lambda: asyncio.run(go())


def test_asgi_requests_leave_no_cycle(setup: InMemoryExporter) -> None:
    run = _asgi_requests(_starlette(), [f"/items/{n}" for n in range(20)] + ["/broken"] * 3)
    assert cyclic_garbage(run) == []
    obskit.flush()
    names = [s.name for s in setup.spans if s.span_kind == "server"]
    assert names.count("GET /items/{item_id}") == 40 and names.count("GET /broken") == 6


def test_fastapi_requests_leave_no_cycle() -> None:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        obskit.get_logger("svc").info("item served", item_id=item_id)
        return {"id": item_id}

    app.add_middleware(ObskitASGIMiddleware)
    assert cyclic_garbage(_asgi_requests(app, [f"/items/{n}" for n in range(20)])) == []


def test_wsgi_requests_leave_no_cycle() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        obskit.get_logger("svc").info("served", path=environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    wrapped = ObskitWSGIMiddleware(app)

    def run() -> None:
        for n in range(20):
            environ = {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": f"/items/{n}",
                "SERVER_NAME": "test",
                "SERVER_PORT": "80",
                "wsgi.url_scheme": "http",
            }
            body = wrapped(environ, lambda status, headers, exc_info=None: None)
            assert b"".join(body) == b"ok"
            getattr(body, "close", lambda: None)()

    assert cyclic_garbage(run) == []


def test_requests_and_instrumented_calls_leave_no_cycle() -> None:
    @obskit.instrument
    def price(n: int) -> float:
        obskit.get_logger("svc").info("pricing", n=n)
        return n * 1.5

    def run() -> None:
        for n in range(20):
            with obskit.request("job", kind="batch"), obskit.context(step=n):
                price(n)

    assert cyclic_garbage(run) == []


def test_a_timer_scheduled_inside_a_request_keeps_none_of_it_alive() -> None:
    # uvicorn schedules each connection's keep-alive timeout from inside the request's last
    # send: loop.call_later copies the context, request scope included, and holds it until
    # the connection's next request (or the timeout).
    import weakref

    from obskit import instrumentation

    timers: list[asyncio.TimerHandle] = []

    async def item(request: Request) -> PlainTextResponse:
        obskit.get_logger("svc").info("served")
        timers.append(asyncio.get_running_loop().call_later(3600, lambda: None))
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/item", item)])
    app.add_middleware(ObskitASGIMiddleware)
    alive: list[weakref.ref[Any]] = []
    original_enter = instrumentation.Request.__enter__

    def enter(self: instrumentation.Request) -> instrumentation.Request:
        alive.append(weakref.ref(self))
        return original_enter(self)

    async def go() -> None:
        instrumentation.Request.__enter__ = enter  # type: ignore[method-assign]
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.get("/item")).text == "ok"
        finally:
            instrumentation.Request.__enter__ = original_enter  # type: ignore[method-assign]
        assert len(timers) == 1 and len(alive) == 1
        assert alive[0]() is None  # freed by reference counting while the timer waits
        timers[0].cancel()

    asyncio.run(go())
