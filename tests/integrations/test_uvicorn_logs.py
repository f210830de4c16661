"""The uvicorn log configuration from docs/integrations.md: uvicorn's own traceback for an
exception obskit captured is dropped (one report per failure), its other records stay."""

from __future__ import annotations

import copy
import logging
import threading
import time
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from obskit.exporters import InMemoryExporter
from obskit.integrations import ObskitASGIMiddleware

from .conftest import settled

kept: list[logging.LogRecord] = []


class Keep(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        kept.append(record)


async def boom(request: Request) -> PlainTextResponse:
    raise RuntimeError("kaboom")


def log_config() -> dict[str, Any]:
    """uvicorn's default configuration, plus the filter (as the docs show), plus a recorder."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"captured": {"()": "obskit.logging.stdlib.CapturedExceptionFilter"}}
    config["handlers"]["keep"] = {"()": f"{__name__}.Keep", "filters": ["captured"]}
    config["loggers"]["uvicorn.error"]["handlers"] = ["keep"]
    config["handlers"]["default"]["filters"] = ["captured"]
    return config


def test_uvicorn_leaves_captured_exceptions_to_obskit(quiet_memory: InMemoryExporter) -> None:
    kept.clear()
    app = Starlette(routes=[Route("/boom", boom)])
    app.add_middleware(ObskitASGIMiddleware)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=log_config(), access_log=False, log_level="info"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        for _ in range(3):
            assert httpx.get(f"http://127.0.0.1:{port}/boom").status_code == 500
        assert len(settled(quiet_memory, spans=3).errors) == 3
    finally:
        server.should_exit = True
        thread.join(30)
    messages = [r.getMessage() for r in kept]
    assert any("Application startup complete" in m for m in messages)  # the rest stays
    assert not any(r.exc_info for r in kept)
    assert not any("Exception in ASGI application" in m for m in messages)
