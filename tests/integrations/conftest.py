"""Real servers on loopback for the integration tests: uvicorn (ASGI) and werkzeug (WSGI)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

import obskit
from obskit.exporters import InMemoryExporter

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"


@contextmanager
def uvicorn_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port, in a thread; yield its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="critical", lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@contextmanager
def werkzeug_server(app: Callable[..., Any]) -> Iterator[str]:
    """Serve the WSGI ``app`` with werkzeug's threaded server on a free loopback port."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(30)


@pytest.fixture
def quiet_memory() -> InMemoryExporter:
    """Like ``memory``, without the interpreter hooks (servers run in threads here)."""
    exporter = InMemoryExporter()
    obskit.init(
        service="test",
        environment="test",
        level="debug",
        exporters=[exporter],
        install_hooks=False,
        queue_size=100_000,
    )
    return exporter


def flushed(exporter: InMemoryExporter) -> InMemoryExporter:
    assert obskit.flush(10)
    return exporter


def settled(exporter: InMemoryExporter, *, spans: int, timeout_s: float = 20.0) -> InMemoryExporter:
    """``exporter`` once it holds ``spans`` obskit spans.

    A client has the whole response before the server-side middleware finishes the request
    (names it, captures, ends the span), so tests wait for the request spans to arrive.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        have = sum(1 for s in flushed(exporter).spans if s.scope == "obskit")
        if have >= spans or time.monotonic() > deadline:
            assert have == spans, f"expected {spans} obskit spans, got {have}"
            return exporter
        time.sleep(0.01)
