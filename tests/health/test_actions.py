"""A check's on_status_change runs on a worker thread, with a timeout and a rate limit, when
the reported status changes; its outcome is logged; a failing or hanging one never holds up the
check or the report."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import obskit
from obskit.diagnostics import ConfigError
from obskit.exporters import InMemoryExporter
from obskit.health import Action, CheckResult, HealthRegistry, Status


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def _action_logs(memory: InMemoryExporter) -> list[tuple[str, str, str, str]]:
    obskit.flush()
    return [
        (r.level, r.event, r.fields["status"], r.fields.get("error", ""))
        for r in memory.logs
        if r.logger == "obskit.health" and "action" in r.event
    ]


def test_on_status_change_hears_each_change_with_the_previous_status(
    memory: InMemoryExporter, clock: Any
) -> None:
    answers = iter([True, False, False, True])
    heard: list[tuple[Status, Status | None]] = []
    done = threading.Semaphore(0)

    def failover(result: CheckResult, previous: Status | None) -> None:
        heard.append((result.status, previous))

    registry = HealthRegistry(clock=clock, cache_ttl_s=0)
    registry.register(
        "db", lambda: next(answers), on_status_change=Action(failover, min_interval_s=0)
    )
    registry._actions.on_outcome = _then(registry._actions.on_outcome, done.release)
    for _ in range(4):
        registry.run()
        clock.advance(10)
    assert done.acquire(timeout=30) and done.acquire(timeout=30)  # both outcomes logged
    # The first pass is no change; pass -> fail and fail -> pass are.
    assert heard == [(Status.FAIL, Status.PASS), (Status.PASS, Status.FAIL)]
    assert [entry[:3] for entry in _action_logs(memory)] == [
        ("info", "health check action ran", "ok"),
        ("info", "health check action ran", "ok"),
    ]


def test_a_hanging_action_is_timed_out_and_the_check_goes_on(
    memory: InMemoryExporter, clock: Any, gate: threading.Event
) -> None:
    answers = iter([False, False, False])
    registry = HealthRegistry(clock=clock, cache_ttl_s=0)
    registry.register(
        "queue",
        lambda: next(answers),
        on_status_change=Action(lambda result, previous: gate.wait(120), timeout_s=600),
    )
    assert registry.run().status is Status.FAIL  # a first report of fail is a change
    clock.advance(599)
    assert registry.run().status is Status.FAIL  # not held up by the action
    assert _action_logs(memory) == []
    clock.advance(1)
    registry.run()  # each run times out the actions past their deadline on the clock
    assert _action_logs(memory) == [
        ("warning", "health check action failed", "timed_out", "still running after 600 s")
    ]


def test_a_failing_action_is_logged_with_its_message(memory: InMemoryExporter, clock: Any) -> None:
    def page(result: CheckResult, previous: Status | None) -> None:
        raise RuntimeError("pager unreachable")

    registry = HealthRegistry(clock=clock, cache_ttl_s=0)
    ended = threading.Event()
    registry.register("cache", lambda: False, critical=False, on_status_change=page)
    registry._actions.on_outcome = _then(registry._actions.on_outcome, ended.set)
    registry.run()
    assert ended.wait(30)
    assert _action_logs(memory) == [
        ("warning", "health check action failed", "error", "RuntimeError: pager unreachable")
    ]


def _then(record: Any, signal: Any) -> Any:
    """The registry's outcome logger, then ``signal()``: a test waits for the log line."""

    def both(run: Any) -> None:
        record(run)
        signal()

    return both


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("restart", "on_status_change must be a function"),
        (Action(print, timeout_s=1), None),
    ],
)
def test_on_status_change_must_be_callable(value: Any, message: str | None) -> None:
    registry = HealthRegistry()
    if message is None:
        registry.register("db", lambda: True, on_status_change=value)
        return
    with pytest.raises(ConfigError, match=message):
        registry.register("db", lambda: True, on_status_change=value)
    assert registry.names() == []
