"""The action runner under alert and health actions: its own thread per run, a timeout on the
injected clock or in real time, a rate limit, a cap on runs in flight, every outcome told once."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from obskit._actions import Action, ActionRun, ActionRunner


class Clock:
    def __init__(self) -> None:
        self.now = 5_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def _runner(
    clock: Clock, **options: object
) -> tuple[ActionRunner, list[ActionRun], threading.Semaphore]:
    outcomes: list[ActionRun] = []
    told = threading.Semaphore(0)

    def record(run: ActionRun) -> None:
        outcomes.append(run)
        told.release()

    return ActionRunner(clock=clock, on_outcome=record, **options), outcomes, told  # type: ignore[arg-type]


def test_an_async_function_runs_to_completion() -> None:
    clock = Clock()
    runner, outcomes, told = _runner(clock)
    seen: list[str] = []

    async def purge(key: str) -> None:
        seen.append(key)

    runner.run(Action(purge), "on_fire", "abc", "cart:42")
    assert told.acquire(timeout=30)
    assert seen == ["cart:42"] and [r.status for r in outcomes] == ["ok"]


def test_system_exit_in_an_action_is_its_error_not_ours() -> None:
    clock = Clock()
    runner, outcomes, told = _runner(clock)

    def quit_() -> None:
        raise SystemExit(3)

    runner.run(Action(quit_), "on_fire", "abc")
    assert told.acquire(timeout=30)
    assert [(r.status, r.error) for r in outcomes] == [("error", "SystemExit: 3")]


def test_runs_past_max_running_are_refused(gate: threading.Event) -> None:
    clock = Clock()
    runner, outcomes, _ = _runner(clock, max_running=2)
    hang = Action(lambda: gate.wait(120), timeout_s=600, min_interval_s=0)
    first = runner.run(hang, "on_fire", "a")
    second = runner.run(hang, "on_fire", "b")
    third = runner.run(hang, "on_fire", "c")
    assert (first.status, second.status) == ("running", "running")
    assert (third.status, third.error) == ("rate_limited", "2 actions still running")
    clock.now += 600
    assert {run.subject for run in runner.expire()} == {"a", "b"}
    assert runner.running() == []
    assert sorted(r.status for r in outcomes) == ["rate_limited", "timed_out", "timed_out"]


def test_a_late_end_after_the_timeout_is_ignored(gate: threading.Event) -> None:
    clock = Clock()
    runner, outcomes, told = _runner(clock)
    run = runner.run(Action(lambda: gate.wait(120), timeout_s=5), "on_fire", "a")
    clock.now += 5
    assert runner.expire() == [run]
    gate.set()  # the function ends now: too late
    assert told.acquire(timeout=30)
    assert [r.status for r in outcomes] == ["timed_out"] and run.finished_at == 5_005.0


def test_the_real_time_watchdog_times_out_what_the_clock_does_not() -> None:
    clock = Clock()  # never moves
    runner, _, told = _runner(clock)
    stop = threading.Event()
    try:
        run = runner.run(Action(lambda: stop.wait(120), timeout_s=0.05), "on_fire", "a")
        assert told.acquire(timeout=30)
        assert run.status == "timed_out" and run.finished_at == run.deadline
    finally:
        stop.set()


@given(st.lists(st.floats(0, 1_000), min_size=1, max_size=30), st.floats(0.1, 100))
def test_starts_are_never_closer_than_min_interval(offsets: list[float], interval: float) -> None:
    clock = Clock()
    runner = ActionRunner(clock=clock)
    action = Action(lambda: None, min_interval_s=interval)
    started: list[float] = []
    for offset in sorted(offsets):
        clock.now = 5_000.0 + offset
        if runner.run(action, "on_fire", "x").status != "rate_limited":
            started.append(clock.now)
    assert started and started[0] == 5_000.0 + min(offsets)
    assert all(b - a >= interval for a, b in itertools.pairwise(started))
