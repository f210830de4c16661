"""Interval checks run in the background on one thread per registry, so ``run()`` answers from
their latest results at once; the thread stops with ``close()`` / ``obskit.shutdown()`` and never
keeps the interpreter alive."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable

import pytest

import obskit
from obskit.health import HealthRegistry, Status
from obskit.health.scheduler import MAX_SLEEP_S, due_checks, next_wakeup
from obskit.health.state import CheckSpec


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def loop_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"obskit-health-loop-{name}"]


# -- when is a check due: pure functions of the clock -------------------------------------------


def spec(name: str, interval_s: float | None) -> CheckSpec:
    return CheckSpec(
        name=name,
        fn=lambda: True,
        is_async=False,
        critical=True,
        timeout_s=1.0,
        interval_s=interval_s,
        tags=frozenset(),
        failure_threshold=1,
        success_threshold=1,
        component_type=None,
        measurement=None,
        cache_ttl_s=None,
        history_size=10,
    )


def test_an_interval_check_is_due_at_once_then_every_interval() -> None:
    now = 1000.0
    specs = [spec("db", 10.0), spec("adhoc", None)]
    assert [s.name for s in due_checks(specs, now)] == ["db"]
    assert next_wakeup(specs, now) == 0.0
    specs[0].state.last_started = now
    assert due_checks(specs, now + 9.9) == []
    assert next_wakeup(specs, now + 4) == pytest.approx(6.0)
    assert [s.name for s in due_checks(specs, now + 10)] == ["db"]
    specs[0].enabled = False
    assert due_checks(specs, now + 100) == []
    assert next_wakeup(specs, now) == MAX_SLEEP_S


def test_a_wall_clock_stepping_back_makes_a_check_due_at_once() -> None:
    specs = [spec("db", 60.0)]
    specs[0].state.last_started = 1000.0
    assert due_checks(specs, 1030.0) == []
    assert due_checks(specs, 400.0) == specs  # NTP stepped back ten minutes
    assert next_wakeup(specs, 400.0) == 0.0


# -- the background thread -----------------------------------------------------------------------


def test_interval_checks_run_in_the_background_and_run_serves_their_latest_result() -> None:
    calls: list[float] = []
    release = threading.Event()

    def slow() -> bool:
        calls.append(time.monotonic())
        if len(calls) > 1:  # the first call passes at once; later ones wait to be released
            release.wait(30)
        return True

    with HealthRegistry(name="bg") as registry:
        registry.register("slow", slow, interval_s=0.05, timeout_s=60)
        try:
            wait_until(lambda: registry.latest("slow") is not None and len(calls) >= 2)
            first = registry.latest("slow")
            # the second call is in flight and cannot finish: the report serves the first,
            # scheduled result (neither waiting for the call in flight nor making one)
            report = registry.run()
            assert report.status is Status.PASS
            assert report.checks["slow"] == first and len(calls) == 2
        finally:
            release.set()
        wait_until(lambda: len(calls) >= 3)


def test_one_thread_runs_every_interval_check_of_a_registry() -> None:
    counts = dict.fromkeys(range(20), 0)

    def make(index: int) -> Callable[[], bool]:
        def check() -> bool:
            counts[index] += 1
            return True

        return check

    with HealthRegistry(name="many") as registry:
        for index in range(20):
            registry.register(f"c{index}", make(index), interval_s=0.02)
        wait_until(lambda: min(counts.values()) >= 3)
        assert len(loop_threads("many")) == 1
        assert loop_threads("many")[0].daemon


def test_a_check_registered_later_or_enabled_again_is_picked_up_at_once() -> None:
    runs = {"first": 0, "second": 0}

    def counting(name: str) -> Callable[[], bool]:
        def check() -> bool:
            runs[name] += 1
            return True

        return check

    with HealthRegistry(name="late") as registry:
        registry.register("first", counting("first"), interval_s=60)
        wait_until(lambda: runs["first"] == 1)
        registry.register("second", counting("second"), interval_s=60)
        wait_until(lambda: runs["second"] == 1)
        registry.disable("second")
        registry.enable("second")  # enabled again: due at once, not in 60 s
        wait_until(lambda: runs["second"] == 2)
        assert runs["first"] == 1  # the others keep their schedule


def test_a_hung_interval_check_keeps_reporting_fail_without_piling_up_threads() -> None:
    release = threading.Event()
    with HealthRegistry(name="hung") as registry:
        registry.register("stuck", release.wait, interval_s=0.02, timeout_s=0.05)
        wait_until(lambda: len(registry.history("stuck")) >= 5)
        calls = [t for t in threading.enumerate() if t.name == "obskit-health-call-stuck"]
        assert len(calls) == 1
        assert registry.run().checks["stuck"].status is Status.FAIL
        release.set()


def test_close_and_obskit_shutdown_stop_the_thread_and_use_starts_it_again() -> None:
    calls: list[int] = []
    registry = HealthRegistry(name="stop")
    registry.register("db", lambda: calls.append(1) or True, interval_s=0.02)
    wait_until(lambda: len(calls) >= 2)
    registry.close()
    assert loop_threads("stop") == []
    after_close = len(calls)
    time.sleep(0.1)
    assert len(calls) == after_close

    registry.start()
    wait_until(lambda: len(calls) > after_close)
    obskit.shutdown()
    assert loop_threads("stop") == []


def test_obskit_shutdown_stops_the_default_registry_too() -> None:
    obskit.health.register("db", lambda: True, interval_s=0.05)
    wait_until(lambda: obskit.health.latest("db") is not None)
    assert len(loop_threads("default")) == 1
    obskit.shutdown()
    assert loop_threads("default") == []


def test_a_hanging_interval_check_never_keeps_the_interpreter_alive() -> None:
    script = textwrap.dedent(
        """
        import threading, time, obskit
        obskit.init(exporters=[])
        obskit.health.register("hangs", threading.Event().wait, interval_s=0.01, timeout_s=0.05)
        time.sleep(0.2)
        print("leaving")
        """
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "leaving"
    assert time.monotonic() - started < 20


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_own_thread_and_runs_checks() -> None:
    registry = HealthRegistry(name="fork", cache_ttl_s=0)
    registry.register("db", lambda: True, interval_s=0.05)
    wait_until(lambda: registry.latest("db") is not None)
    pid = os.fork()
    if pid == 0:  # the child: any failure is a non-zero exit
        code = 1
        try:
            ok = registry.run(fresh=True).status is Status.PASS
            code = 0 if ok and len(loop_threads("fork")) == 1 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    registry.close()
    assert os.waitstatus_to_exitcode(status) == 0
