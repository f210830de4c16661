"""Alerts raised by hand go through the same routing as a rule's: groups, silences,
inhibition, escalation, acknowledgement, history. Dedup keys follow PagerDuty Events v2, label
sets Alertmanager. All on a test clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import obskit.alerts
from obskit.alerts import AlertEngine
from obskit.diagnostics import ConfigError

from .conftest import Clock, Recorder

START = 1_000_000.0


class Desk:
    """An engine with a recording channel ("team") and a latency rule, at START."""

    def __init__(self, engine: AlertEngine, clock: Clock) -> None:
        self.engine, self.clock = engine, clock
        self.channel = Recorder()
        engine.add_channel("team", self.channel)
        clock.now = START

    def rule(self, **fields: Any) -> None:
        defaults: dict[str, Any] = {
            "name": "slow",
            "metric": "latency",
            "aggregation": "max",
            "window_s": 60,
            "op": ">",
            "threshold": 1.0,
            "channels": ["team"],
        }
        self.engine.add_rule(**{**defaults, **fields})

    def at(self, seconds: float, **latency: float) -> list[tuple[str, str, list[str]]]:
        """At START + seconds: record ``route=value`` latencies, evaluate, what was sent."""
        self.clock.now = START + seconds
        for route, value in latency.items():
            self.engine.observe("latency", value, route=route)
        self.engine.evaluate()
        assert self.engine.flush(5)
        return self.sent()

    def sent(self) -> list[tuple[str, str, list[str]]]:
        assert self.engine.flush(5)
        out = [
            (n.reason, n.status, sorted(f"{a.rule}:{a.state}" for a in n.alerts))
            for n in self.channel.sent
        ]
        self.channel.sent.clear()
        return out


@pytest.fixture
def desk(make_engine: Callable[..., AlertEngine], clock: Clock) -> Callable[..., Desk]:
    def make(**options: Any) -> Desk:
        settings = {"group_wait_s": 30, "group_interval_s": 60, "repeat_interval_s": 3600}
        return Desk(make_engine(**{**settings, **options}), clock)

    return make


def test_a_manual_alert_fires_at_once_and_is_notified_after_group_wait(
    desk: Callable[..., Desk],
) -> None:
    d = desk()
    alert = d.engine.trigger(
        "payments_down", severity="critical", summary="acme answers 502", channels=["team"]
    )
    assert (alert.state, alert.severity, alert.labels["alertname"]) == (
        "firing",
        "critical",
        "payments_down",
    )
    assert alert.annotations == {"summary": "acme answers 502"}
    assert alert.details["source"] == "manual"
    assert alert.details["dedup_key"] == alert.fingerprint  # no key given: the label set is it
    assert d.sent() == []  # the group waits group_wait_s, as a rule's would
    assert d.at(29) == []
    assert d.at(30) == [("first", "firing", ["payments_down:firing"])]
    assert [a.fingerprint for a in d.engine.active()] == [alert.fingerprint]


def test_a_manual_alert_is_grouped_with_a_rules_alert(desk: Callable[..., Desk]) -> None:
    d = desk()
    d.rule(group_by=["team"], labels={"team": "payments"})
    assert d.at(0, checkout=3.0) == []  # the rule's alert fires; its group waits
    d.clock.now = START + 10
    d.engine.trigger(
        "payments_down", labels={"team": "payments"}, group_by=["team"], channels=["team"]
    )
    d.clock.now = START + 30
    d.engine.evaluate()
    assert d.engine.flush(5)
    (notification,) = d.channel.sent
    assert notification.group_labels == {"team": "payments"}
    assert d.sent() == [("first", "firing", ["payments_down:firing", "slow:firing"])]


def test_a_silence_mutes_a_manual_alert_like_a_rules(desk: Callable[..., Desk]) -> None:
    d = desk(group_wait_s=0)
    d.rule()
    silence = d.engine.silence({"team": "payments"}, duration_s=600)
    d.engine.trigger("payments_down", labels={"team": "payments"}, channels=["team"])
    assert d.sent() == []
    assert d.at(0, checkout=3.0) == [("first", "firing", ["slow:firing"])]  # not silenced
    (manual,) = [a for a in d.engine.active() if a.rule == "payments_down"]
    assert manual.details["muted_by"] == f"silence {silence.id}"
    assert d.at(300) == [("resolved", "resolved", ["slow:resolved"])]  # the rule's went on
    assert d.at(540) == []  # still silenced (the group's next look is at 600)
    assert d.at(600) == [("first", "firing", ["payments_down:firing"])]  # the silence ended


def test_inhibition_works_both_ways_between_manual_and_rule_alerts(
    desk: Callable[..., Desk],
) -> None:
    d = desk(group_wait_s=0)
    d.rule(severity="warning", labels={"service": "checkout"})
    d.engine.add_inhibit_rule(
        source_matchers={"severity": "critical"},
        target_matchers={"severity": "warning"},
        equal=["service"],
    )
    # A critical manual alert mutes the rule's warning about the same service...
    d.engine.trigger(
        "checkout_down", severity="critical", labels={"service": "checkout"}, channels=["team"]
    )
    assert d.sent() == [("first", "firing", ["checkout_down:firing"])]
    assert d.at(0, checkout=3.0) == []
    (slow,) = [a for a in d.engine.active() if a.rule == "slow"]
    assert slow.details["muted_by"] == "inhibition"
    # ...until it is resolved; then the warning is news.
    d.engine.resolve_manual("checkout_down")
    assert d.at(60, checkout=3.0) == [
        ("resolved", "resolved", ["checkout_down:resolved"]),
        ("first", "firing", ["slow:firing"]),
    ]
    # A manual warning is muted by a critical rule alert with the same service.
    d.rule(name="down", metric="up", aggregation="last", op="<", threshold=1,
           severity="critical", labels={"service": "checkout"})  # fmt: skip
    d.engine.observe("up", 0.0, route="checkout")
    assert d.at(61) == [("first", "firing", ["down:firing"])]
    d.engine.trigger("checkout_slow", labels={"service": "checkout"}, channels=["team"])
    assert d.sent() == []
    (muted,) = [a for a in d.engine.active() if a.rule == "checkout_slow"]
    assert muted.details["muted_by"] == "inhibition"


def test_the_same_dedup_key_updates_the_open_alert(desk: Callable[..., Desk]) -> None:
    d = desk(group_wait_s=0)
    first = d.engine.trigger(
        "queue_stuck", summary="1200 jobs waiting", dedup_key="queue-emails", channels=["team"]
    )
    assert d.sent() == [("first", "firing", ["queue_stuck:firing"])]
    d.clock.now = START + 10
    again = d.engine.trigger(
        "queue_stuck", summary="1500 jobs waiting", dedup_key="queue-emails", channels=["team"]
    )
    assert again.fingerprint == first.fingerprint
    assert again.annotations["summary"] == "1500 jobs waiting"
    assert again.fired_at == START  # the same alert, still firing since the first trigger
    assert d.at(120) == []  # an update is not news (PagerDuty adds it to the open incident)
    assert len(d.engine.active()) == 1
    events = [e["event"] for e in d.engine.history() if e.get("rule") == "queue_stuck"]
    assert events == ["firing", "retriggered"]
    # A severity change is news: channels hear it at the group's next flush.
    d.clock.now = START + 130
    raised = d.engine.trigger(
        "queue_stuck", severity="critical", dedup_key="queue-emails", channels=["team"]
    )
    assert raised.severity == "critical" and raised.fingerprint == first.fingerprint
    assert d.at(190) == [("first", "firing", ["queue_stuck:firing"])]
    (resolved,) = d.engine.resolve_manual("queue-emails", by="ops", comment="drained")
    assert (resolved.state, resolved.details["resolved_by"]) == ("resolved", "ops")
    assert d.engine.active() == []
    assert d.at(250) == [("resolved", "resolved", ["queue_stuck:resolved"])]
    assert d.engine.resolve_manual("queue-emails") == []  # nothing open any more


def test_without_a_dedup_key_the_label_set_is_the_alert(desk: Callable[..., Desk]) -> None:
    d = desk(group_wait_s=0)
    a = d.engine.trigger("disk_full", labels={"volume": "/data"}, channels=["team"])
    b = d.engine.trigger("disk_full", labels={"volume": "/logs"}, channels=["team"])
    again = d.engine.trigger("disk_full", labels={"volume": "/data"}, channels=["team"])
    assert a.fingerprint != b.fingerprint and again.fingerprint == a.fingerprint
    assert len(d.engine.active()) == 2
    # By name, narrowed by labels; then by name alone; by the generated key (fingerprint).
    (only,) = d.engine.resolve_manual("disk_full", labels={"volume": "/logs"})
    assert only.fingerprint == b.fingerprint
    assert [x.fingerprint for x in d.engine.resolve_manual(a.details["dedup_key"])] == [
        a.fingerprint
    ]
    assert d.engine.active() == []


def test_acknowledging_and_resolving_by_fingerprint_work_on_manual_alerts(
    desk: Callable[..., Desk],
) -> None:
    d = desk(group_wait_s=0)
    alert = d.engine.trigger("db_failover", severity="critical", channels=["team"])
    assert d.sent() == [("first", "firing", ["db_failover:firing"])]
    taken = d.engine.acknowledge(alert.fingerprint, by="ana")
    assert taken is not None and taken.state == "acknowledged"
    assert d.sent() == [("acknowledged", "acknowledged", ["db_failover:firing"])]
    done = d.engine.resolve(alert, by="ana", comment="failed back")
    assert done is not None and done.state == "resolved"
    assert d.sent() == [("resolved", "resolved", ["db_failover:resolved"])]
    assert d.engine.active() == []


def test_resolve_after_s_closes_an_alert_not_triggered_again(desk: Callable[..., Desk]) -> None:
    d = desk(group_wait_s=0)
    d.engine.trigger("cache_cold", dedup_key="cache", resolve_after_s=300, channels=["team"])
    assert d.sent() == [("first", "firing", ["cache_cold:firing"])]
    d.clock.now = START + 200
    d.engine.trigger("cache_cold", dedup_key="cache", resolve_after_s=300, channels=["team"])
    assert d.at(400) == []  # triggered again at 200: holds until 500
    assert d.at(500) == [("resolved", "resolved", ["cache_cold:resolved"])]
    (event,) = [e for e in d.engine.history() if e["event"] == "resolved"]
    assert event["rule"] == "cache_cold"


def test_escalation_policies_apply_to_manual_alerts(desk: Callable[..., Desk]) -> None:
    d = desk(group_wait_s=0)
    pager = Recorder()
    d.engine.add_channel("pager", pager)
    d.engine.add_escalation_policy(name="oncall", levels=[{"after_s": 300, "channels": ["pager"]}])
    d.engine.trigger("payments_down", escalation="oncall", channels=["team"])
    d.at(299)
    assert pager.sent == []
    d.at(300)
    assert [n.reason for n in pager.sent] == ["escalation"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"severity": "page"}, "severity must be one of info, warning, error, critical"),
        ({"channels": ["tema"]}, "no channel called 'tema'"),
        ({"labels": {"alertname": "x"}}, "label 'alertname' is set by name="),
        ({"dedup_key": ""}, "dedup_key must be a non-empty string"),
        ({"escalation": "nobody"}, "no escalation policy called 'nobody'"),
        ({"resolve_after_s": -1}, "resolve_after_s must be a finite number > 0"),
        ({"group_by": "team"}, r"group_by is a list of names, e.g. \['team'\]"),
        ({"group_by": [""]}, "group_by is a list of label names"),
    ],
)
def test_trigger_mistakes_raise_config_error_saying_what_to_change(
    desk: Callable[..., Desk], options: dict[str, Any], message: str
) -> None:
    d = desk()
    with pytest.raises(ConfigError, match=message):
        d.engine.trigger("payments_down", **options)
    assert d.engine.active() == []


def test_the_module_functions_use_the_default_engine(clock: Clock) -> None:
    engine = obskit.alerts.configure(evaluation_interval_s=None, clock=clock, group_wait_s=0)
    channel = Recorder()
    obskit.alerts.add_channel("team", channel)
    alert = obskit.alerts.trigger("nightly_job_failed", summary="exit 3", channels=["team"])
    assert obskit.alerts.active()[0].fingerprint == alert.fingerprint
    assert [a.state for a in obskit.alerts.resolve_manual("nightly_job_failed")] == ["resolved"]
    assert engine.flush(5)
    assert [n.status for n in channel.sent] == ["firing"]  # the resolution waits for its flush
