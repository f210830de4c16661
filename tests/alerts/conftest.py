"""Alert tests: a clock the test moves, engines that are closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import obskit.alerts
from obskit.alerts import AlertEngine


class Clock:
    """A clock the test moves by hand: ``clock()`` reads it, ``clock.advance(s)`` moves it."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_engine(clock: Clock) -> Iterator[Callable[..., AlertEngine]]:
    """Build engines on the test clock (no background threads); all are closed afterwards."""
    engines: list[AlertEngine] = []

    def make(**options: Any) -> AlertEngine:
        options.setdefault("clock", clock)
        options.setdefault("group_wait_s", 0)
        options.setdefault("group_interval_s", 60)
        options.setdefault("repeat_interval_s", 3600)
        options.setdefault("retry_initial_backoff_s", 0.01)
        engine = AlertEngine(**options)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close(timeout_s=2)


@pytest.fixture
def engine(make_engine: Callable[..., AlertEngine]) -> AlertEngine:
    """An engine on the test clock whose channels retry quickly (three attempts)."""
    return make_engine(max_attempts=3, retry_initial_backoff_s=0.01, retry_max_backoff_s=0.05)


@pytest.fixture(autouse=True)
def _fresh_default_engine() -> Iterator[None]:
    yield
    obskit.alerts.reset()


def fire_and_resolve(engine: AlertEngine, clock: Clock, channel: str, **rule: Any) -> None:
    """One alert fires (then is flushed), and resolves (then is flushed)."""
    rule.setdefault("annotations", {"summary": "{{ labels.name }} fails: {{ value }}"})
    engine.add_rule(
        name="high_error_rate",
        metric="errors",
        aggregation="last",
        threshold=1,
        severity="critical",
        channels=[channel],
        **rule,
    )
    engine.observe("errors", 5.0, name="POST /checkout")
    engine.evaluate()
    assert engine.flush(10)
    clock.advance(60)
    engine.observe("errors", 0.0, name="POST /checkout")
    engine.evaluate()
    assert engine.flush(10)


def sent(engine: AlertEngine, channel: str) -> dict[str, int]:
    """A channel's delivery counts: sent, failed, retried, dropped."""
    return dict(engine.stats()["notifications"][channel])


class Recorder:
    """A channel that keeps what it was sent."""

    def __init__(self, *, send_resolved: bool = True) -> None:
        self.sent: list[obskit.alerts.Notification] = []
        self.send_resolved = send_resolved

    def send(self, notification: obskit.alerts.Notification) -> None:
        self.sent.append(notification)

    def take(self) -> list[tuple[str, str, list[str]]]:
        """(reason, status, [rule:state per alert]) of everything sent so far; clears it."""
        out = [
            (n.reason, n.status, [f"{a.labels.get('name', a.rule)}:{a.state}" for a in n.alerts])
            for n in self.sent
        ]
        self.sent.clear()
        return out
