"""AlertmanagerChannel against the real Alertmanager (Debian ``prometheus-alertmanager``)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest

from obskit.alerts import AlertEngine, AlertmanagerChannel, ChannelError, WebhookChannel
from obskit.alerts.notify import Notification
from obskit.diagnostics import ConfigError
from obskit.signals import Alert

from .conftest import Clock
from .promstack import alertmanager, alertmanager_webhook_config, get_json, wait_for
from .receivers import HttpReceiver, http_receiver


def parse_time(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def replica(make_engine: Callable[..., AlertEngine], name: str, channel: Any) -> AlertEngine:
    engine = make_engine(clock=time.time, external_labels={"instance": name})
    engine.add_channel("am", channel)
    engine.add_rule(
        name="high_error_ratio",
        metric="errors",
        aggregation="last",
        window_s=60,
        threshold=0.05,
        severity="critical",
        channels=["am"],
        annotations={
            "summary": "{{ labels.instance }} fails {{ value }}",
            "runbook_url": "https://wiki.shop.test/runbooks/high_error_ratio",
        },
    )
    return engine


def step(engine: AlertEngine, value: float) -> list[str]:
    engine.observe("errors", value, route="/cart")
    states = [a.state for a in engine.evaluate()]
    assert engine.flush(30)
    return states


def notifications(receiver: HttpReceiver) -> list[dict[str, Any]]:
    return [r.body for r in receiver.received if r.path == "/am"]


def test_two_replicas_are_grouped_into_one_notification_and_resolve_partially(
    make_engine: Callable[..., AlertEngine],
) -> None:
    with (
        http_receiver() as receiver,
        alertmanager(alertmanager_webhook_config(receiver.url + "/am")) as am,
    ):
        channel = AlertmanagerChannel(am, resend_interval_s=60)
        a, b = (replica(make_engine, name, channel) for name in ("a", "b"))
        assert step(a, 0.2) == ["firing"] and step(b, 0.3) == ["firing"]

        (first,) = wait_for(lambda: notifications(receiver), 15, "the first notification")
        assert first["status"] == "firing"
        assert first["groupLabels"] == {"alertname": "high_error_ratio"}
        assert sorted(x["labels"]["instance"] for x in first["alerts"]) == ["a", "b"]
        assert {x["labels"]["route"] for x in first["alerts"]} == {"/cart"}
        assert first["commonLabels"]["service"] == a.external_labels["service"]

        assert step(b, 0.0) == ["resolved"]
        second = wait_for(lambda: notifications(receiver)[1:], 15, "b's resolution")[0]
        states = {x["labels"]["instance"]: x["status"] for x in second["alerts"]}
        assert (second["status"], states) == ("firing", {"a": "firing", "b": "resolved"})
        active = get_json(am + "/api/v2/alerts?active=true")
        assert [x["labels"]["instance"] for x in active] == ["a"]

        assert step(a, 0.0) == ["resolved"]
        third = wait_for(lambda: notifications(receiver)[2:], 15, "the resolved notification")[0]
        assert third["status"] == "resolved"
        resolved = [(x["labels"]["instance"], x["status"]) for x in third["alerts"]]
        assert resolved == [("a", "resolved")]
        assert get_json(am + "/api/v2/alerts?active=true") == []


def test_posted_alerts_carry_times_and_generator_url(
    make_engine: Callable[..., AlertEngine],
) -> None:
    with (
        http_receiver() as receiver,
        alertmanager(alertmanager_webhook_config(receiver.url + "/am")) as am,
    ):
        engine = replica(make_engine, "a", AlertmanagerChannel(am, resend_interval_s=30))
        before = time.time()
        step(engine, 1.0)
        (alert,) = wait_for(lambda: get_json(am + "/api/v2/alerts"), 10, "the alert")
        assert alert["generatorURL"] == f"obskit://{engine.external_labels['service']}" + (
            "/rules/high_error_ratio"
        )
        ends = parse_time(alert["endsAt"])
        assert before + 4 * 30 - 1 <= ends <= time.time() + 4 * 30 + 1
        assert alert["annotations"] == {  # the runbook reaches Alertmanager's receivers
            "summary": "a fails 1",
            "runbook_url": "https://wiki.shop.test/runbooks/high_error_ratio",
        }


def test_firing_alerts_are_resent_every_resend_interval_with_ends_at_ahead(
    make_engine: Callable[..., AlertEngine], clock: Clock
) -> None:
    with http_receiver() as receiver:
        engine = make_engine(external_labels={"instance": "a"}, evaluation_interval_s=None)
        engine.add_channel("am", AlertmanagerChannel(receiver.url, resend_interval_s=60))
        engine.add_rule(
            name="hot",
            metric="temp",
            aggregation="last",
            window_s=600,
            threshold=100,
            channels=["am"],
        )
        for _ in range(9):  # every 15 s for two minutes: sent at 0, 60 and 120
            engine.observe("temp", 150.0)
            engine.evaluate()
            clock.advance(15)
        engine.flush(30)
        posts = [r for r in receiver.received if r.path == "/api/v2/alerts"]
        sent_at = [clock.now - 135 + 15 * i for i in (0, 4, 8)]
        assert len(posts) == 3
        for post, at in zip(posts, sent_at, strict=True):
            (alert,) = post.body
            assert parse_time(alert["endsAt"]) == at + 240  # 4 resend intervals ahead
            assert parse_time(alert["startsAt"]) == sent_at[0]
        engine.observe("temp", 20.0)
        engine.evaluate()
        engine.flush(30)
        (resolved,) = receiver.received[-1].body
        assert parse_time(resolved["endsAt"]) == clock.now  # endsAt = now on resolution


def test_alertmanager_refusal_is_not_retried_and_keeps_its_message() -> None:
    with (
        http_receiver() as receiver,
        alertmanager(alertmanager_webhook_config(receiver.url + "/am")) as am,
    ):
        channel = AlertmanagerChannel(am)
        broken = Alert(
            timestamp=200.0,
            rule="x",
            state="resolved",
            severity="warning",
            labels={"alertname": "x"},
            fired_at=300.0,
            resolved_at=200.0,
        )
        with pytest.raises(ChannelError) as refused:
            channel.send(Notification("am", "update", [broken], timestamp=200.0))
        assert not refused.value.retryable
        assert "400" in str(refused.value) and "start time must be before end time" in str(
            refused.value
        )


def test_server_errors_are_retried(make_engine: Callable[..., AlertEngine]) -> None:
    with http_receiver() as receiver:
        receiver.scripted["/api/v2/alerts"] = [503, 500]
        engine = replica(make_engine, "a", AlertmanagerChannel(receiver.url))
        step(engine, 1.0)
        assert engine.stats()["notifications"]["am"] == {
            "sent": 1,
            "failed": 0,
            "retried": 2,
            "dropped": 0,
        }


def test_webhook_body_is_the_one_alertmanager_sends(
    make_engine: Callable[..., AlertEngine],
) -> None:
    """The same alert through Alertmanager's webhook and obskit's: the same fields."""
    with (
        http_receiver() as receiver,
        alertmanager(alertmanager_webhook_config(receiver.url + "/am")) as am,
    ):
        engine = replica(make_engine, "a", AlertmanagerChannel(am))
        engine.add_channel("hook", WebhookChannel(receiver.url + "/hook"))
        engine.add_rule(
            name="also",
            metric="errors",
            aggregation="last",
            window_s=60,
            threshold=0.05,
            channels=["hook"],
        )
        step(engine, 1.0)
        (from_am,) = wait_for(lambda: notifications(receiver), 15, "Alertmanager's webhook")
        (ours,) = [r.body for r in receiver.received if r.path == "/hook"]
        assert set(ours) - {"obskit"} == set(from_am)
        assert set(ours["alerts"][0]) == set(from_am["alerts"][0])
        assert (
            ours["alerts"][0]["endsAt"]
            == from_am["alerts"][0]["endsAt"]
            == ("0001-01-01T00:00:00Z")
        )
        assert (ours["version"], ours["truncatedAlerts"]) == ("4", 0)
        assert ours["obskit"]["reason"] == "first"


def test_a_bad_url_or_interval_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="http://"):
        AlertmanagerChannel("alertmanager:9093")
    with pytest.raises(ConfigError, match="resend_interval_s"):
        AlertmanagerChannel("http://127.0.0.1:9093", resend_interval_s=0)
    with pytest.raises(ConfigError, match="generator_url"):
        AlertmanagerChannel("http://127.0.0.1:9093", generator_url="{nope}")


def test_resolutions_by_hand_and_removed_rules_are_posted_with_ends_at_now(
    make_engine: Callable[..., AlertEngine], clock: Clock
) -> None:
    with http_receiver() as receiver:
        engine = make_engine(external_labels={"instance": "a"})
        engine.add_channel("am", AlertmanagerChannel(receiver.url))
        for name in ("hot", "cold"):
            engine.add_rule(
                name=name,
                metric="temp",
                aggregation="last",
                window_s=600,
                threshold=100,
                channels=["am"],
            )
        engine.observe("temp", 150.0)
        hot, _ = engine.evaluate()
        engine.flush(30)
        clock.advance(30)
        engine.resolve(hot, by="ana", comment="fixed")
        engine.flush(30)
        clock.advance(30)
        engine.remove_rule("cold")
        engine.evaluate()
        engine.flush(30)
        posts = [r.body for r in receiver.received]
        assert [len(p) for p in posts] == [2, 1, 2]
        ((by_hand,), again) = posts[1], {a["labels"]["alertname"]: a for a in posts[2]}
        assert parse_time(by_hand["endsAt"]) == clock.now - 30  # resolved at once, by hand
        assert parse_time(again["cold"]["endsAt"]) == clock.now  # its rule went away
        # hot's condition still holds: it fires again, a new alert from now
        assert parse_time(again["hot"]["startsAt"]) == clock.now
        engine.acknowledge(hot)  # Alertmanager has no acknowledgement: nothing is posted
        engine.flush(30)
        assert len(receiver.received) == 3
