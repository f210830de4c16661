"""Running checks: all at once, each bounded by its timeout; whatever a check does, the report
comes back, and the check's failure says why."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from obskit.health import CheckResult, HealthRegistry, Status, time_left


@pytest.fixture
def forever() -> Iterator[threading.Event]:
    """Waiting on it sleeps "forever": until the test is over, so no thread outlives it."""
    event = threading.Event()
    yield event
    event.set()


def _registry() -> HealthRegistry:
    return HealthRegistry(cache_ttl_s=0)


# -- acceptance --------------------------------------------------------------------------------


def test_a_hundred_checks_run_all_at_once_so_a_report_takes_one_checks_time() -> None:
    """Each check waits until all 100 are running; the report passes only if the runner started
    every one before any had finished (one after another, the first would time out)."""
    registry = _registry()
    arrived = 0
    arrived_lock = threading.Lock()
    everyone = threading.Event()

    def arrive() -> None:
        nonlocal arrived
        with arrived_lock:
            arrived += 1
            if arrived == 100:
                everyone.set()

    def sync_check() -> bool:
        arrive()
        return everyone.wait(20)

    async def async_check() -> bool:
        arrive()
        for _ in range(2000):  # 20 s at most
            if everyone.is_set():
                return True
            await asyncio.sleep(0.01)
        return False

    for index in range(50):
        registry.register(f"sync{index}", sync_check, timeout_s=30)
        registry.register(f"async{index}", async_check, timeout_s=30)
    report = registry.run()

    assert arrived == 100
    assert report.status is Status.PASS and len(report.checks) == 100, report.checks


def test_a_check_that_sleeps_forever_is_reported_as_timed_out_and_run_returns(
    forever: threading.Event,
) -> None:
    registry = _registry()
    registry.register("hangs", forever.wait, timeout_s=0.2)
    registry.register("fine", lambda: True)

    report = registry.run()  # comes back although the check never does

    assert report.status is Status.FAIL
    assert report.checks["hangs"].message == "timed out after 0.2 s"
    assert report.checks["fine"].status is Status.PASS


def test_an_async_check_that_sleeps_forever_times_out_too() -> None:
    registry = _registry()

    async def hangs() -> bool:
        await asyncio.Event().wait()
        return True

    registry.register("hangs", hangs, timeout_s=0.2)
    report = registry.run()
    assert report.checks["hangs"].message == "timed out after 0.2 s"


def test_an_async_check_that_swallows_its_cancellation_does_not_hold_the_report(
    forever: threading.Event,
) -> None:
    registry = _registry()

    async def stubborn() -> bool:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                while not forever.is_set():  # ignore it until the test is over, then give in
                    await asyncio.sleep(0.01)
                return True

    registry.register("stubborn", stubborn, timeout_s=0.1)
    report = registry.run()  # comes back while the check still ignores its cancellation
    assert report.checks["stubborn"].message == "timed out after 0.1 s"


# -- what a check may return, raise or do ------------------------------------------------------


class Boom(Exception):
    pass


@pytest.mark.parametrize(
    ("returned", "status", "message"),
    [
        (True, Status.PASS, ""),
        (None, Status.PASS, ""),
        (False, Status.FAIL, "returned False"),
        ("warn", Status.WARN, ""),
        (Status.FAIL, Status.FAIL, ""),
        (CheckResult.warn("slow"), Status.WARN, "slow"),
        (42, Status.FAIL, "returned 42 (int); a check returns True/False, None, a status"),
        ("yes", Status.FAIL, "returned 'yes' (str)"),
        ({"ok": 1}, Status.FAIL, "returned {'ok': 1} (dict)"),
    ],
)
def test_what_a_check_returns_becomes_its_result(
    returned: Any, status: Status, message: str
) -> None:
    registry = _registry()
    registry.register("c", lambda: returned)
    result = registry.run().checks["c"]
    assert result.status is status
    assert result.message.startswith(message)


def test_a_raising_check_fails_with_the_exception_type_and_message() -> None:
    registry = _registry()

    def broken() -> bool:
        raise Boom("connection reset by peer")

    async def broken_async() -> bool:
        raise Boom("pool exhausted")

    registry.register("sync", broken)
    registry.register("async", broken_async)
    report = registry.run()
    assert report.checks["sync"].message == "Boom: connection reset by peer"
    assert report.checks["async"].message == "Boom: pool exhausted"


def test_even_system_exit_in_a_check_is_only_that_checks_failure() -> None:
    registry = _registry()

    def exits() -> None:
        raise SystemExit(3)

    registry.register("exits", exits)
    assert registry.run().checks["exits"].message == "SystemExit: 3"


def test_a_sync_function_returning_a_coroutine_is_told_to_be_async_def() -> None:
    async def real() -> bool:
        return True

    registry = _registry()
    registry.register("wrapped", lambda: real())
    assert "declare the check with `async def`" in registry.run().checks["wrapped"].message


def test_results_carry_name_time_duration_and_registration_metadata(clock: Any) -> None:
    registry = HealthRegistry(clock=clock)
    registry.register("db", lambda: time.sleep(0.02), critical=False, component_type="datastore")
    result = registry.run().checks["db"]
    assert (result.name, result.time, result.critical) == ("db", clock.now, False)
    assert result.component_type == "datastore"
    assert 15 <= result.duration_ms < 10_000  # measured (a loaded machine may be slow)


def test_a_hung_sync_check_is_not_started_again_while_its_call_still_runs() -> None:
    calls = []
    release = threading.Event()

    def hangs() -> bool:
        calls.append(1)
        release.wait()
        return True

    registry = _registry()
    registry.register("hangs", hangs, timeout_s=0.1)
    registry.run()
    again = registry.run().checks["hangs"]
    assert again.duration_ms == 0  # no new wait: it is known to hang
    assert again.status is Status.FAIL
    assert "is still running, so it was not started again" in again.message
    assert len(calls) == 1
    release.set()
    deadline = time.monotonic() + 30
    while registry.run().checks["hangs"].status is not Status.PASS:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert len(calls) == 2


def test_back_to_back_runs_never_take_a_finished_call_for_a_hung_one() -> None:
    registry = _registry()
    registry.register("quick", lambda: True)
    assert all(registry.run().status is Status.PASS for _ in range(300))


def test_overlapping_runs_of_one_check_share_a_single_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from obskit.health import runner

    calls = []
    release = threading.Event()
    joined = []
    wait_threadsafe = runner._wait_threadsafe

    async def joining(*args: Any) -> Any:  # a run that found the call in flight waits here
        joined.append(1)
        return await wait_threadsafe(*args)

    monkeypatch.setattr(runner, "_wait_threadsafe", joining)

    def slow() -> bool:
        calls.append(1)
        release.wait(30)
        return True

    registry = _registry()
    registry.register("slow", slow, timeout_s=60)
    registry.start()
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(registry.run())) for _ in range(5)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(joined) < 4:  # one run makes the call, the other four join it
        assert time.monotonic() < deadline, (len(calls), len(joined))
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert [r.status for r in reports] == [Status.PASS] * 5


async def test_run_async_runs_async_checks_on_the_callers_event_loop() -> None:
    loops = []

    async def where() -> bool:
        loops.append(asyncio.get_running_loop())
        return True

    registry = _registry()
    registry.register("where", where)
    registry.register("sync", lambda: True)
    report = await registry.run_async()
    assert report.status is Status.PASS
    assert loops == [asyncio.get_running_loop()]


async def test_run_async_bounds_sync_checks_without_blocking_the_loop(
    forever: threading.Event,
) -> None:
    registry = _registry()
    registry.register("hangs", forever.wait, timeout_s=0.2)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.ensure_future(ticker())
    report = await registry.run_async()
    task.cancel()
    assert report.checks["hangs"].message == "timed out after 0.2 s"
    assert ticks >= 5  # the loop kept running while the check hung


def test_time_left_tells_a_check_how_long_it_may_take() -> None:
    seen = []
    registry = _registry()
    registry.register("sync", lambda: seen.append(time_left()), timeout_s=2)

    async def async_check() -> None:
        seen.append(time_left())

    registry.register("async", async_check, timeout_s=3)
    registry.run()
    assert time_left() is None
    assert sorted(round(s or 0) for s in seen) == [2, 3]


def test_force_runs_a_check_now_despite_the_cache(clock: Any) -> None:
    calls = []
    registry = HealthRegistry(clock=clock, cache_ttl_s=60)
    registry.register("db", lambda: calls.append(1) or True)
    registry.run()
    registry.run()
    assert len(calls) == 1
    assert registry.force("db").status is Status.PASS
    assert len(calls) == 2
