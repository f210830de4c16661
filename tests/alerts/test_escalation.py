"""Escalation by severity (warning raised to critical after N minutes unacknowledged) and on
recurrence (the same alert starting to fire K times within a window), at the exact evaluation
where it is due, on a test clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from obskit.alerts import AlertEngine, RuleError

from .conftest import Clock, Recorder

START = 1_000_000.0


class Oncall:
    """An engine with "team" (the rule's channel) and "pager" (an escalation level)."""

    def __init__(self, engine: AlertEngine, clock: Clock) -> None:
        self.engine, self.clock = engine, clock
        self.team, self.pager = Recorder(), Recorder()
        engine.add_channel("team", self.team)
        engine.add_channel("pager", self.pager)
        clock.now = START

    def rule(self, **fields: Any) -> None:
        defaults: dict[str, Any] = {
            "name": "queue_backlog",
            "metric": "queue.depth",
            "aggregation": "last",
            "window_s": 60,
            "op": ">",
            "threshold": 1000,
            "severity": "warning",
            "channels": ["team"],
            "escalation": "oncall",
        }
        self.engine.add_rule(**{**defaults, **fields})

    def at(self, seconds: float, depth: float | None = None) -> None:
        self.clock.now = START + seconds
        if depth is not None:
            self.engine.observe("queue.depth", depth, queue="emails")
        self.engine.evaluate()
        assert self.engine.flush(10)

    @staticmethod
    def told(channel: Recorder) -> list[tuple[str, str, str]]:
        out = [(n.reason, a.severity, a.labels["severity"]) for n in channel.sent for a in n.alerts]
        channel.sent.clear()
        return out


@pytest.fixture
def oncall(make_engine: Callable[..., AlertEngine], clock: Clock) -> Oncall:
    return Oncall(make_engine(group_wait_s=0, group_interval_s=60), clock)


def test_a_warning_is_raised_to_critical_after_15_minutes_unacknowledged(oncall: Oncall) -> None:
    o = oncall
    o.engine.add_escalation_policy(
        name="oncall",
        levels=[{"after_s": "15m", "raise_severity": "critical", "channels": ["pager"]}],
    )
    o.rule(window_s=3600)
    o.at(0, depth=5000)
    assert o.told(o.team) == [("first", "warning", "warning")]
    for seconds in range(60, 900, 60):
        o.at(seconds)
    o.at(899)
    assert o.told(o.pager) == []
    o.at(900)  # due at this evaluation, not before
    assert o.told(o.pager) == [("escalation", "critical", "critical")]
    (alert,) = o.engine.active()
    assert (alert.severity, alert.details["escalated"]) == (
        "critical",
        "level 1: unacknowledged for 900 s",
    )
    o.at(1800)
    assert o.told(o.pager) == []  # once per level


def test_a_level_without_channels_tells_those_that_heard_and_acknowledging_stops_it(
    oncall: Oncall,
) -> None:
    o = oncall
    o.engine.add_escalation_policy(
        name="oncall",
        levels=[
            {"after_s": 300, "raise_severity": "error"},
            {"after_s": 900, "raise_severity": "critical", "channels": ["pager"]},
        ],
    )
    o.rule(window_s=3600)
    o.at(0, depth=5000)
    o.told(o.team)
    o.at(300)
    assert o.told(o.team) == [("escalation", "error", "error")]
    (alert,) = o.engine.active()
    o.engine.acknowledge(alert, by="ana")
    o.told(o.team)
    o.at(900)
    assert o.told(o.pager) == []  # acknowledged: escalation stopped


def test_an_escalated_critical_inhibits_warnings_like_any_critical(oncall: Oncall) -> None:
    o = oncall
    o.engine.add_escalation_policy(
        name="oncall", levels=[{"after_s": 300, "raise_severity": "critical"}]
    )
    o.engine.add_inhibit_rule(
        source_matchers={"severity": "critical"},
        target_matchers={"severity": "warning"},
        equal=["queue"],
    )
    o.rule(window_s=3600)
    o.at(0, depth=5000)
    o.at(300)
    o.engine.trigger("queue_slow", labels={"queue": "emails"}, channels=["team"])
    (slow,) = [a for a in o.engine.active() if a.rule == "queue_slow"]
    assert slow.details["muted_by"] == "inhibition"


def test_the_third_firing_within_an_hour_escalates_at_that_evaluation(oncall: Oncall) -> None:
    o = oncall
    o.engine.add_escalation_policy(
        name="oncall",
        levels=[{"after_s": "30m", "raise_severity": "critical", "channels": ["pager"]}],
        recurrence_count=3,
        recurrence_window_s="1h",
    )
    o.rule()  # a 60 s window: each episode ends a minute after its last sample
    for start in (0, 600):  # two short episodes: not escalated
        o.at(start, depth=5000)
        o.at(start + 120)
    assert o.told(o.pager) == []
    assert [a for a in o.engine.active()] == []
    o.at(1200, depth=5000)  # the third start within the hour
    assert o.told(o.pager) == [("escalation", "critical", "critical")]
    (alert,) = o.engine.active()
    assert alert.details["escalated"] == "level 1: fired 3 times within 3600 s"


def test_firings_older_than_the_window_do_not_count(oncall: Oncall) -> None:
    o = oncall
    o.engine.add_escalation_policy(
        name="oncall",
        levels=[{"after_s": "30m", "channels": ["pager"]}],
        recurrence_count=3,
        recurrence_window_s="1h",
    )
    o.rule()
    for start in (0, 2000, 3700):  # 3 starts, but never 3 within one hour
        o.at(start, depth=5000)
        o.at(start + 120)
    assert o.told(o.pager) == []
    o.at(4000, depth=5000)  # 2000, 3700, 4000: three within the hour
    assert [reason for reason, _, _ in o.told(o.pager)] == ["escalation"]


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"levels": [{"after_s": 60}]}, "a level needs channels to tell, a severity to raise"),
        (
            {
                "levels": [
                    {"raise_severity": "critical"},
                    {"after_s": 60, "raise_severity": "error"},
                ]
            },
            "raise_severity must go up from level to level",
        ),
        ({"levels": [{"raise_severity": "urgent"}]}, "raise_severity"),
        (
            {"levels": [{"channels": ["pager"]}], "recurrence_count": 3},
            "recurrence_count and recurrence_window_s go together",
        ),
        (
            {"levels": [{"channels": ["pager"]}], "recurrence_count": 1, "recurrence_window_s": 60},
            "recurrence_count",
        ),
        ({"levels": [{"channels": ["pagr"]}]}, "no channel called 'pagr'; did you mean 'pager'"),
    ],
)
def test_policy_mistakes_raise_saying_what_to_change(
    oncall: Oncall, policy: dict[str, Any], message: str
) -> None:
    with pytest.raises(RuleError, match=message):
        oncall.engine.add_escalation_policy(name="oncall", **policy)
