"""Real servers on loopback for the integration tests: uvicorn (ASGI) and werkzeug (WSGI)."""

from __future__ import annotations

import time

import pytest

import obskit
from obskit.exporters import InMemoryExporter

from ..loopback import uvicorn_server, werkzeug_server  # noqa: F401 (used by the tests here)

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"


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
        max_queue_size=100_000,
    )
    return exporter


def flushed(exporter: InMemoryExporter) -> InMemoryExporter:
    assert obskit.flush(10)
    return exporter


def settled(exporter: InMemoryExporter, *, spans: int, timeout_s: float = 20.0) -> InMemoryExporter:
    """``exporter`` once it holds ``spans`` obskit spans (server spans of any scope count:
    obskit joins a framework's own, FastAPI's).

    A client has the whole response before the server-side middleware finishes the request
    (names it, captures, ends the span), so tests wait for the request spans to arrive.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        have = sum(
            1 for s in flushed(exporter).spans if s.scope == "obskit" or s.span_kind == "server"
        )
        if have >= spans or time.monotonic() > deadline:
            assert have == spans, f"expected {spans} obskit spans, got {have}"
            return exporter
        time.sleep(0.01)
