"""The engine as an application meets it: the facade, the default engine, the background
evaluator, and never raising."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import pytest

import obskit
import obskit.alerts
from obskit import diagnostics
from obskit.alerts import AlertEngine, Notification

from .conftest import Clock, Recorder


def test_the_facade_exposes_alerts_and_metrics() -> None:
    assert obskit.alerts is __import__("obskit.alerts").alerts
    assert {"alerts", "metrics"} <= set(obskit.__all__)
    assert obskit.metrics.observe is __import__("obskit.metrics").metrics.observe


def test_the_default_engine_hears_obskit_metrics_and_evaluates_in_the_background() -> None:
    obskit.alerts.configure(evaluation_interval_s=0.02, group_wait_s=0, group_interval_s=1)
    recorder = Recorder()
    obskit.alerts.add_channel("team", recorder)
    obskit.alerts.add_rule(
        name="slow",
        metric="latency_ms",
        aggregation="max",
        window_s=60,
        threshold=100,
        channels=["team"],
    )
    obskit.metrics.observe("latency_ms", 250.0, route="/cart")
    deadline = time.monotonic() + 30
    while not recorder.sent and time.monotonic() < deadline:
        time.sleep(0.01)
    (notification,) = recorder.sent
    assert notification.alerts[0].labels["route"] == "/cart"
    assert [a.state for a in obskit.alerts.active()] == ["firing"]
    assert obskit.alerts.stats()["fired_by_severity"] == {"warning": 1}


def test_an_independent_engine_does_not_hear_obskit_metrics_unless_attached(
    make_engine: Callable[..., AlertEngine],
) -> None:
    engine = make_engine()
    obskit.metrics.observe("latency_ms", 1.0)
    assert engine.store.stats()["series"] == 0
    obskit.metrics.add_sink(engine.store)
    try:
        obskit.metrics.observe("latency_ms", 1.0)
    finally:
        obskit.metrics.remove_sink(engine.store)
    assert engine.store.stats()["series"] == 1


def test_a_full_notification_queue_drops_and_counts(
    make_engine: Callable[..., AlertEngine], clock: Clock
) -> None:
    release = threading.Event()

    class Stuck:
        def send(self, notification: Notification) -> None:
            release.wait(30)

    engine = make_engine(max_queue_size=2)
    engine.add_channel("stuck", Stuck())
    engine.add_rule(
        name="r", metric="m", aggregation="last", threshold=0, group_by=["..."], channels=["stuck"]
    )
    for route in range(6):
        engine.observe("m", 1.0, route=str(route))
    engine.evaluate()
    release.set()
    assert engine.flush(30)
    stats = engine.stats()["notifications"]["stuck"]
    assert stats["dropped"] >= 3 and stats["sent"] + stats["dropped"] == 6
    assert diagnostics.problem_counts()["alerts.notification_dropped"] == stats["dropped"]


def test_a_broken_channel_or_rule_never_raises_into_the_app(
    make_engine: Callable[..., AlertEngine], clock: Clock
) -> None:
    class Broken:
        def send(self, notification: Notification) -> None:
            raise RuntimeError("bug in a channel")

    engine = make_engine()
    engine.add_channel("broken", Broken())
    engine.add_rule(name="r", metric="m", aggregation="last", threshold=0, channels=["broken"])
    engine.observe("m", 1.0)
    assert [a.state for a in engine.evaluate()] == ["firing"]
    assert engine.flush(30)
    assert engine.stats()["notifications"]["broken"]["failed"] == 1  # not retried: a bug
    engine._rules["r"].reader = None  # type: ignore[assignment]  # a rule that cannot run
    assert engine.evaluate(clock.advance(1)) == []
    assert diagnostics.problem_counts()["alerts.rule.r"] == 1


def test_closing_delivers_what_is_queued(make_engine: Callable[..., AlertEngine]) -> None:
    engine = make_engine()
    recorder = Recorder()
    engine.add_channel("team", recorder)
    engine.add_rule(name="r", metric="m", aggregation="last", threshold=0, channels=["team"])
    engine.observe("m", 1.0)
    engine.evaluate()
    engine.close(timeout_s=5)
    assert len(recorder.sent) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_fresh_locks_and_its_own_evaluator(
    make_engine: Callable[..., AlertEngine],
) -> None:
    engine = make_engine(evaluation_interval_s=60)
    engine.add_rule(name="r", metric="m", aggregation="last", threshold=0)
    engine.store.metrics["m"].lock.acquire()  # as if a parent thread held it when forking
    engine._lock.acquire()
    pid = os.fork()
    if pid == 0:  # the child: must not deadlock, and evaluates in the background again
        code = 1
        try:
            engine.observe("m", 1.0)
            alive = engine._thread is not None and engine._thread.is_alive()
            code = 0 if alive and [a.state for a in engine.evaluate()] == ["firing"] else 2
        finally:
            os._exit(code)
    engine._lock.release()
    engine.store.metrics["m"].lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
