"""Notification routing follows Alertmanager: groups, group_wait/interval, repeat, dedup,
silences, inhibition; plus escalation and acknowledgement. All on a test clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from obskit.alerts import AlertEngine
from obskit.config import ConfigError

from .conftest import Clock, Recorder

START = 1_000_000.0


class Scenario:
    """An engine with a recording channel, driven at times relative to the start."""

    def __init__(self, engine: AlertEngine, clock: Clock, **rule: Any) -> None:
        self.engine, self.clock = engine, clock
        self.channel = Recorder()
        engine.add_channel("team", self.channel)
        self.rule(**rule)

    def rule(self, **fields: Any) -> None:
        defaults: dict[str, Any] = {
            "name": "errors",
            "metric": "errors",
            "aggregation": "last",
            "window_s": 600,
            "op": ">",
            "threshold": 10,
            "channels": ["team"],
        }
        self.engine.add_rule(**{**defaults, **fields})

    def at(self, seconds: float, **values: float) -> list[tuple[str, str, list[str]]]:
        """At START + seconds: set each series ``name=value``, evaluate, return what was sent."""
        self.clock.now = START + seconds
        for name, value in values.items():
            self.engine.observe("errors", value, name=name)
        self.engine.evaluate()
        assert self.engine.flush(30)
        return self.channel.take()


@pytest.fixture
def scenario(make_engine: Callable[..., AlertEngine], clock: Clock) -> Callable[..., Scenario]:
    def make(engine_options: dict[str, Any] | None = None, **rule: Any) -> Scenario:
        options = {"group_wait_s": 30, "group_interval_s": 60, "repeat_interval_s": 3600}
        return Scenario(make_engine(**{**options, **(engine_options or {})}), clock, **rule)

    return make


# -- grouping and timing -------------------------------------------------------------------------


def test_group_wait_gathers_alerts_that_start_together(scenario: Callable[..., Scenario]) -> None:
    s = scenario()
    assert s.at(0, cart=50) == []  # fires; the group waits 30 s
    assert s.at(15, search=50) == []  # same group (by alertname)
    assert s.at(30) == [("first", "firing", ["cart:firing", "search:firing"])]


def test_group_interval_batches_later_alerts(scenario: Callable[..., Scenario]) -> None:
    s = scenario()
    s.at(0, cart=50)
    assert s.at(30) == [("first", "firing", ["cart:firing"])]
    assert s.at(40, search=50) == []  # joins the group; next look at 30 + 60
    assert s.at(89) == []
    assert s.at(90) == [("new_alerts", "firing", ["cart:firing", "search:firing"])]


def test_identical_notifications_are_not_repeated_before_repeat_interval(
    scenario: Callable[..., Scenario],
) -> None:
    s = scenario({"repeat_interval_s": 120})
    s.at(0, cart=50)
    assert s.at(30) == [("first", "firing", ["cart:firing"])]
    assert s.at(90, cart=60) == []  # value changed, same alerts: no new notification
    assert s.at(150) == [("repeat", "firing", ["cart:firing"])]  # 120 s after the last one
    assert s.at(210) == []


def test_resolution_is_notified_at_the_next_flush_and_the_group_ends(
    scenario: Callable[..., Scenario],
) -> None:
    s = scenario()
    s.at(0, cart=50)
    s.at(30)
    assert s.at(45, cart=1) == []  # resolved; told at the group's next look
    assert s.at(90) == [("resolved", "resolved", ["cart:resolved"])]
    assert s.engine.router.groups == {}
    assert s.at(100, cart=50) == []  # a new group: waits group_wait again
    assert s.at(130) == [("first", "firing", ["cart:firing"])]


def test_a_partial_resolution_is_sent_only_to_channels_that_want_resolutions(
    scenario: Callable[..., Scenario],
) -> None:
    s = scenario()
    quiet = Recorder(send_resolved=False)
    s.engine.add_channel("quiet", quiet)
    s.rule(name="errors2", channels=["team", "quiet"])
    s.at(0, cart=50, search=50)
    s.at(30)
    quiet.take()
    assert s.at(40, search=1) == []
    assert s.at(90) == [
        ("resolved", "firing", ["cart:firing", "search:resolved"]),
        ("resolved", "firing", ["cart:firing", "search:resolved"]),
    ]  # both rules' groups on "team"
    assert quiet.take() == []  # nothing new fires: no message for it
    s.at(100, cart=1)
    s.at(150)
    assert quiet.take() == []  # all resolved: logged, not sent (send_resolved=False)


def test_group_by_splits_groups(scenario: Callable[..., Scenario]) -> None:
    s = scenario(group_by=["name"])
    s.at(0, cart=50, search=50)
    assert s.at(30) == [
        ("first", "firing", ["cart:firing"]),
        ("first", "firing", ["search:firing"]),
    ]


def test_pending_alerts_are_never_routed(scenario: Callable[..., Scenario]) -> None:
    s = scenario(for_s=300)
    s.at(0, cart=50)
    assert s.at(30) == [] and s.at(90) == []
    assert s.at(300) == []  # fires now; waits group_wait
    assert s.at(330) == [("first", "firing", ["cart:firing"])]


# -- silences --------------------------------------------------------------------------------------


def test_a_silenced_alert_is_evaluated_but_not_notified(scenario: Callable[..., Scenario]) -> None:
    s = scenario()
    silence = s.engine.silence(
        ['name=~"ca.*"'], duration_s=200, comment="deploying the cart", created_by="ana"
    )
    s.at(0, cart=50, search=50)
    assert s.at(30) == [("first", "firing", ["search:firing"])]
    muted = {a.labels["name"]: a.details.get("muted_by") for a in s.engine.active()}
    assert muted == {"cart": f"silence {silence.id}", "search": None}
    assert s.at(150) == []
    assert s.at(210) == [("new_alerts", "firing", ["cart:firing", "search:firing"])]  # it ended


def test_a_silence_can_be_ended_early_and_is_listed_until_then(
    scenario: Callable[..., Scenario],
) -> None:
    s = scenario()
    silence = s.engine.silence({"name": "cart"}, duration_s=3600)
    assert [x.id for x in s.engine.silences()] == [silence.id]
    s.at(0, cart=50)
    assert s.at(30) == []
    s.engine.expire_silence(silence.id)
    assert s.engine.silences() == []
    assert s.at(90) == [("first", "firing", ["cart:firing"])]


def test_a_silence_must_match_something_and_end_after_it_starts(
    make_engine: Callable[..., AlertEngine],
) -> None:
    engine = make_engine()
    with pytest.raises(ConfigError, match="at least one matcher"):
        engine.silence({})
    with pytest.raises(ConfigError, match="must end after it starts"):
        engine.silence({"name": "x"}, duration_s=0)
    with pytest.raises(ConfigError, match="bad matcher"):
        engine.silence(["name~x"])


# -- inhibition ------------------------------------------------------------------------------------


def test_a_firing_critical_alert_mutes_warnings_with_the_same_labels(
    scenario: Callable[..., Scenario],
) -> None:
    s = scenario(name="errors_warning", threshold=10, severity="warning")
    s.rule(name="errors_critical", threshold=100, severity="critical")
    s.engine.add_inhibit_rule(
        source_matchers={"severity": "critical"},
        target_matchers={"severity": "warning"},
        equal=["name"],
    )
    s.at(0, cart=500, search=50)  # cart: warning and critical; search: warning only
    sent = s.at(30)
    assert sorted(sent) == [
        ("first", "firing", ["cart:firing"]),  # the critical one
        ("first", "firing", ["search:firing"]),  # search's warning: no critical on search
    ]
    assert s.at(40, cart=50) == []  # critical resolves, cart's warning still fires
    assert sorted(s.at(90)) == [
        ("new_alerts", "firing", ["cart:firing", "search:firing"]),  # now unmuted
        ("resolved", "resolved", ["cart:resolved"]),
    ]


def test_an_inhibit_rule_needs_matchers_on_both_sides(
    make_engine: Callable[..., AlertEngine],
) -> None:
    from obskit.alerts import RuleError

    with pytest.raises(RuleError, match="field 'source_matchers': needs at least one matcher"):
        make_engine().add_inhibit_rule(source_matchers={}, target_matchers={"severity": "warning"})


# -- escalation and acknowledgement ---------------------------------------------------------


def test_escalation_reaches_the_next_level_unless_acknowledged(
    make_engine: Callable[..., AlertEngine], clock: Clock
) -> None:
    engine = make_engine(group_wait_s=30, group_interval_s=60, repeat_interval_s=3600)
    slack, pager = Recorder(), Recorder()
    engine.add_channel("slack", slack)
    engine.add_channel("pager", pager)
    engine.add_escalation_policy(
        name="checkout",
        levels=[{"after_s": 0, "channels": ["slack"]}, {"after_s": "5m", "channels": ["pager"]}],
    )
    engine.add_rule(
        name="errors",
        metric="errors",
        aggregation="last",
        window_s="3h",
        threshold=10,
        escalation="checkout",
    )
    engine.observe("errors", 50.0, name="cart")
    engine.evaluate()
    engine.flush()
    assert slack.take() == [("escalation", "firing", ["cart:firing"])]
    engine.evaluate(clock.advance(299))
    engine.flush()
    assert pager.take() == []
    engine.evaluate(clock.advance(1))
    engine.flush()
    assert pager.take() == [("escalation", "firing", ["cart:firing"])]


def test_acknowledging_stops_escalation_and_tells_who_heard(
    make_engine: Callable[..., AlertEngine], clock: Clock
) -> None:
    engine = make_engine(group_wait_s=0, group_interval_s=60, repeat_interval_s=120)
    team, pager = Recorder(), Recorder()
    engine.add_channel("team", team)
    engine.add_channel("pager", pager)
    engine.add_escalation_policy(name="p", levels=[{"after_s": 600, "channels": ["pager"]}])
    engine.add_rule(
        name="errors",
        metric="errors",
        aggregation="last",
        window_s="3h",
        threshold=10,
        channels=["team"],
        escalation="p",
    )
    engine.observe("errors", 50.0, name="cart")
    (fired,) = engine.evaluate()
    engine.flush()
    assert team.take() == [("first", "firing", ["cart:firing"])]
    clock.advance(90)
    acked = engine.acknowledge(fired, by="ana", comment="looking at the cart service")
    assert acked is not None and acked.state == "acknowledged"
    assert acked.details["acknowledged_by"] == "ana"
    engine.flush()
    assert team.take() == [("acknowledged", "acknowledged", ["cart:firing"])]
    for _ in range(12):  # two hours: no escalation, no repeats of an acknowledged group
        engine.evaluate(clock.advance(600))
    engine.flush()
    assert pager.take() == [] and team.take() == []
    assert engine.stats()["mean_time_to_acknowledge_s"] == 90
    assert engine.acknowledge("no-such-fingerprint") is None


def test_resolving_by_hand_notifies_and_the_alert_may_fire_again(
    scenario: Callable[..., Scenario],
) -> None:
    s = scenario({"group_wait_s": 0})
    s.at(0, cart=50)
    (alert,) = s.engine.active()
    s.clock.now = START + 10
    resolved = s.engine.resolve(alert.fingerprint, by="ana", comment="false alarm")
    assert resolved is not None and resolved.state == "resolved"
    assert resolved.details["resolved_by"] == "ana"
    s.engine.flush()
    assert s.channel.take() == [("resolved", "resolved", ["cart:resolved"])]  # told at once
    assert s.at(60) == [("first", "firing", ["cart:firing"])]  # condition still true: news again
    assert s.engine.resolve("no-such-fingerprint") is None


def test_history_and_statistics(scenario: Callable[..., Scenario]) -> None:
    s = scenario({"group_wait_s": 0}, severity="critical")
    s.at(0, cart=50)
    s.at(60, cart=1)
    s.at(120)
    events = [(e["event"], e.get("reason")) for e in s.engine.history()]
    assert events == [
        ("firing", None),
        ("notified", "first"),
        ("resolved", None),
        ("notified", "resolved"),
    ]
    stats = s.engine.stats()
    assert stats["fired_by_severity"] == {"critical": 1}
    assert stats["mean_time_to_resolve_s"] == 60
    assert stats["notifications"]["team"] == {"sent": 2, "failed": 0, "retried": 0, "dropped": 0}
    assert s.engine.history(limit=1)[0]["event"] == "notified"


def test_removing_a_rule_resolves_its_firing_alerts(scenario: Callable[..., Scenario]) -> None:
    s = scenario()
    s.at(0, cart=50)
    s.at(30)
    s.channel.take()
    (resolved,) = s.engine.remove_rule("errors")
    assert (resolved.state, resolved.details["comment"]) == ("resolved", "rule removed")
    assert s.engine.active() == []
    assert s.at(90) == [("resolved", "resolved", ["cart:resolved"])]
