"""What a notification carries beyond its alerts (action outcomes, release, error groups,
traces), how channels show it, and how delivery waits for a running action: until it ends,
and never past its timeout."""

from __future__ import annotations

import json
import threading
import time

from obskit._actions import ActionRun
from obskit.alerts import (
    EmailChannel,
    LogChannel,
    Notification,
    PagerDutyChannel,
    SlackChannel,
)
from obskit.alerts.context import ErrorGroupRise, TraceExemplar
from obskit.alerts.notify import Dispatcher
from obskit.signals import Alert

from .conftest import Recorder


def _alert() -> Alert:
    return Alert(
        timestamp=100.0,
        rule="slow_checkout",
        state="firing",
        severity="critical",
        value=2.5,
        fingerprint="a3261ac32bbcbeda",
        annotations={"summary": "checkout p95 is 2.5 s"},
    )


def _notification() -> Notification:
    run = ActionRun("on_fire", "restart_worker", "a3261ac32bbcbeda", 100.0, 105.0)
    run.finish("error", "RuntimeError: no worker", at=100.5)
    return Notification(
        "team",
        "first",
        [_alert()],
        actions=[run],
        release="1.4.2",
        error_groups=[
            ErrorGroupRise(
                "9f2c41d0aa",
                "KeyError: 'sku'",
                12,
                1,
                "https://ops.example/obskit/errors/9f2c41d0aa",
            )
        ],
        exemplars=[
            TraceExemplar(
                "a3261ac32bbcbeda",
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "00f067aa0ba902b7",
                2.5,
                99.0,
            )
        ],
    )


EXPECTED_LINES = [
    "on_fire restart_worker: error after 0.5 s: RuntimeError: no worker",
    "Release: 1.4.2",
    "Error group KeyError: 'sku': 12 events in the window (1 before) "
    "https://ops.example/obskit/errors/9f2c41d0aa",
    "Trace 4bf92f3577b34da6a3ce929d0e0e4736 (value 2.5)",
]


def test_context_lines_list_actions_release_error_groups_and_traces() -> None:
    assert _notification().context_lines() == EXPECTED_LINES


def test_the_webhook_body_carries_the_context_under_obskit() -> None:
    body = json.loads(json.dumps(_notification().to_dict(), default=str))
    assert body["version"] == "4"  # still Alertmanager's format
    extra = body["obskit"]
    assert extra["release"] == "1.4.2"
    assert [(a["hook"], a["status"], a["error"]) for a in extra["actions"]] == [
        ("on_fire", "error", "RuntimeError: no worker")
    ]
    assert extra["error_groups"][0]["fingerprint"] == "9f2c41d0aa"
    assert extra["error_groups"][0]["count"] == 12
    assert extra["exemplars"][0]["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_slack_email_pagerduty_and_log_show_the_context_lines() -> None:
    note = _notification()
    slack = SlackChannel("https://hooks.example/T/B/X").payload(note)
    context = [b for b in slack["blocks"] if b["type"] == "context"][-1]
    assert [e["text"] for e in context["elements"]] == EXPECTED_LINES
    email = EmailChannel("127.0.0.1", sender="a@example.org", recipients=["b@example.org"])
    body = email.message(note).get_content()
    assert all(line in body for line in EXPECTED_LINES)
    event = PagerDutyChannel(routing_key="R" * 32).event(
        note.alerts[0], "trigger", note.context_lines()
    )
    assert event["payload"]["custom_details"]["context"] == EXPECTED_LINES
    assert LogChannel().describe(note) == ("critical", "[FIRING:1] slow_checkout")


def _running(timeout_s: float) -> ActionRun:
    now = time.monotonic()
    return ActionRun(
        "on_fire", "restart_worker", "a3261ac32bbcbeda", 100.0, 100.0 + timeout_s,
        monotonic_deadline=now + timeout_s,
    )  # fmt: skip


def test_delivery_waits_for_a_running_action_and_carries_its_outcome() -> None:
    channel = Recorder()
    dispatcher = Dispatcher({"team": channel})
    run = _running(timeout_s=600.0)
    try:
        dispatcher.submit(Notification("team", "first", [_alert()], actions=[run]))
        assert not dispatcher.flush(0.2)  # held: the action still runs
        assert channel.sent == []
        run.finish("ok", at=101.0)  # its end releases the notification at once
        assert dispatcher.flush(30)
        (sent,) = channel.sent
        assert [(r.status, r.duration_s) for r in sent.actions] == [("ok", 1.0)]
    finally:
        dispatcher.close(2)


def test_delivery_never_waits_past_the_actions_timeout() -> None:
    channel = Recorder()
    dispatcher = Dispatcher({"team": channel})
    run = _running(timeout_s=0.05)  # never finished by anyone: the real-time deadline passes
    try:
        dispatcher.submit(Notification("team", "first", [_alert()], actions=[run]))
        assert dispatcher.flush(30)
        (sent,) = channel.sent
        assert [r.status for r in sent.actions] == ["timed_out"]
        assert run.status == "timed_out"
    finally:
        dispatcher.close(2)


def test_action_errors_are_scrubbed_before_they_leave() -> None:
    channel = Recorder()
    dispatcher = Dispatcher({"team": channel})
    run = ActionRun("on_fire", "rotate", "x", 0.0, 5.0)
    run.finish("error", "ValueError: password=hunter2 refused", at=1.0)
    try:
        dispatcher.submit(Notification("team", "first", [_alert()], actions=[run]))
        assert dispatcher.flush(30)
        (sent,) = channel.sent
        assert "hunter2" not in sent.actions[0].error
        assert sent.actions[0].status == "error"
    finally:
        dispatcher.close(2)


def test_two_actions_release_the_notification_only_when_both_ended() -> None:
    channel = Recorder()
    dispatcher = Dispatcher({"team": channel})
    first, second = _running(600.0), _running(600.0)
    try:
        dispatcher.submit(Notification("team", "first", [_alert()], actions=[first, second]))
        done = threading.Thread(target=first.finish, args=("ok",), kwargs={"at": 101.0})
        done.start()
        done.join(10)
        assert not dispatcher.flush(0.2)
        second.finish("error", "OSError: busy", at=102.0)
        assert dispatcher.flush(30)
        assert [r.status for r in channel.sent[0].actions] == ["ok", "error"]
    finally:
        dispatcher.close(2)
