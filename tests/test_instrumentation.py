"""@instrument, request() and timer(): spans, timing, error capture, signatures kept."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import obskit
from obskit.exporters import InMemoryExporter

from .conftest import RecordingSink


@obskit.instrument
def add(a: int, b: int = 2) -> int:
    """Adds."""
    return a + b


@obskit.instrument(name="custom", attributes={"team": "core"}, record_args=True)
async def fetch(key: str) -> str:
    await asyncio.sleep(0)
    return key.upper()


@obskit.instrument
def numbers(n: int) -> Iterator[int]:
    yield from range(n)


@obskit.instrument
async def anumbers(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


class Service:
    @obskit.instrument
    def method(self, x: int) -> int:
        return x * 10


def test_signatures_and_introspection_survive() -> None:
    assert add.__name__ == "add" and add.__doc__ == "Adds."
    assert list(inspect.signature(add).parameters) == ["a", "b"]
    assert inspect.signature(add).parameters["b"].default == 2
    assert inspect.iscoroutinefunction(fetch)
    assert inspect.isgeneratorfunction(numbers)
    assert inspect.isasyncgenfunction(anumbers)


def test_all_callable_kinds_work(memory: InMemoryExporter, sink: RecordingSink) -> None:
    assert add(1) == 3
    assert Service().method(2) == 20
    assert asyncio.run(fetch("k")) == "K"
    assert list(numbers(3)) == [0, 1, 2]

    async def consume() -> list[int]:
        return [i async for i in anumbers(3)]

    assert asyncio.run(consume()) == [0, 1, 2]
    names = [p[3]["function"] for p in sink.points if p[1] == "obskit.function.duration"]
    assert names == ["add", "Service.method", "custom", "numbers", "anumbers"]


def test_spans_only_inside_a_trace(memory: InMemoryExporter) -> None:
    add(1)
    with obskit.request("GET /add", method="GET") as req:
        add(2)
        asyncio.run(fetch("x"))
    obskit.flush()
    spans = {s.name: s for s in memory.spans}
    assert set(spans) == {"GET /add", "add", "custom"}
    assert spans["add"].parent_span_id == spans["GET /add"].span_id
    assert spans["add"].trace_id == req.trace_id
    assert spans["custom"].attributes["team"] == "core"
    assert spans["custom"].attributes["code.arg.key"] == "'x'"
    assert spans["GET /add"].attributes["method"] == "GET"


def test_exceptions_are_recorded_once_and_reraised_unchanged(
    memory: InMemoryExporter, sink: RecordingSink
) -> None:
    error = KeyError("missing")

    @obskit.instrument
    def inner() -> None:
        raise error

    @obskit.instrument
    def outer() -> None:
        inner()

    with pytest.raises(KeyError) as caught, obskit.request("POST /fail"):
        outer()
    assert caught.value is error
    obskit.flush()
    recorded = [r for r in memory.logs if r.level == "error"] + memory.errors
    assert len(recorded) == 1
    (span,) = [s for s in memory.spans if s.name == "POST /fail"]
    assert span.status == "error"
    failed = {"name": "POST /fail", "error.type": "KeyError"}
    assert [p[3] for p in sink.points if p[1] == "obskit.request.duration"] == [failed]
    functions = [p[3] for p in sink.points if p[1] == "obskit.function.duration"]
    assert [labels.get("error.type") for labels in functions] == ["KeyError", "KeyError"]


def test_async_request_scope_sets_context_and_5xx_marks_error(
    memory: InMemoryExporter, sink: RecordingSink
) -> None:
    async def handler() -> tuple[str, dict[str, Any]]:
        async with obskit.request("GET /items", request_id="rid-1", route="/items") as req:
            req.set_status(503)
            return req.request_id, obskit.current_context()

    request_id, ctx = asyncio.run(handler())
    assert request_id == "rid-1" and ctx == {"request_id": "rid-1", "route": "/items"}
    obskit.flush()
    (span,) = memory.spans
    assert span.status == "error" and span.attributes["http.response.status_code"] == 503
    durations = [p[3] for p in sink.points if p[1] == "obskit.request.duration"]
    assert durations == [{"name": "GET /items", "error.type": "503"}]


def test_timer_as_context_manager_and_decorator(sink: RecordingSink) -> None:
    with obskit.timer("block", kind="a") as t:
        time.sleep(0.01)
    assert 10 <= t.elapsed_ms < 10_000

    @obskit.timer("fn")
    def work() -> int:
        return 5

    assert work() == 5
    assert [(p[1], p[3]) for p in sink.points] == [("block", {"kind": "a"}), ("fn", {})]
    assert sink.points[0][2] == t.elapsed_ms / 1000  # the measured time, in seconds


def test_instrument_refuses_non_callables() -> None:
    with pytest.raises(TypeError):
        obskit.instrument(42)


def test_a_cancelled_request_is_not_a_failure(
    memory: InMemoryExporter, sink: RecordingSink
) -> None:
    async def cancelled() -> None:
        async with obskit.request("GET /slow"):
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled())
    obskit.flush()
    (span,) = memory.spans
    assert span.status != "error"
    assert not memory.errors
    durations = [p[3] for p in sink.points if p[1] == "obskit.request.duration"]
    assert durations == [{"name": "GET /slow"}]  # no error.type
