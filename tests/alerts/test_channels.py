"""Channels against real local receivers: Slack and PagerDuty payloads as documented, webhook
signatures, SMTP delivery, and failures retried, counted and never raised."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import hmac
import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from obskit import diagnostics
from obskit.alerts import (
    AlertEngine,
    EmailChannel,
    LogChannel,
    PagerDutyChannel,
    SlackChannel,
    WebhookChannel,
)
from obskit.alerts.notify import ZERO_TIME
from obskit.exporters import InMemoryExporter

from .conftest import Clock, fire_and_resolve, sent
from .receivers import HttpReceiver, free_port, http_receiver

ROUTING_KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as running:
        yield running


def test_slack_messages_follow_the_incoming_webhook_format(
    engine: AlertEngine, clock: Clock, receiver: HttpReceiver
) -> None:
    engine.add_channel("slack", SlackChannel(webhook_url=receiver.url + "/slack"))
    fire_and_resolve(engine, clock, "slack")
    assert sent(engine, "slack") == {"sent": 2, "failed": 0, "retried": 0, "dropped": 0}
    firing, resolved = receiver.bodies("/slack")
    assert firing["text"] == ":rotating_light: [FIRING:1] high_error_rate"
    assert "POST /checkout fails: 5" in firing["blocks"][1]["text"]["text"]
    assert resolved["text"] == ":white_check_mark: [RESOLVED:1] high_error_rate"


def test_pagerduty_events_trigger_acknowledge_and_resolve_one_incident(
    engine: AlertEngine, clock: Clock, receiver: HttpReceiver
) -> None:
    engine.add_channel(
        "pager", PagerDutyChannel(routing_key=ROUTING_KEY, url=receiver.url + "/pagerduty")
    )
    engine.add_rule(
        name="high_error_rate",
        metric="errors",
        aggregation="last",
        threshold=1,
        severity="critical",
        channels=["pager"],
    )
    engine.observe("errors", 5.0, name="POST /checkout")
    (alert,) = engine.evaluate()
    engine.flush()
    engine.acknowledge(alert, by="ana", comment="on it")
    engine.flush()
    clock.advance(60)
    engine.observe("errors", 0.0, name="POST /checkout")
    engine.evaluate()
    engine.flush()
    events = receiver.bodies("/pagerduty")
    assert [e["event_action"] for e in events] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in events} == {f"obskit-{alert.fingerprint}"}
    trigger = events[0]["payload"]
    assert (trigger["severity"], trigger["summary"]) == ("critical", "high_error_rate: 5")
    assert trigger["custom_details"]["labels"]["name"] == "POST /checkout"
    assert sent(engine, "pager") == {"sent": 3, "failed": 0, "retried": 0, "dropped": 0}


RUNBOOK = "https://wiki.shop.test/runbooks/high_error_rate?section=a&b"
WITH_RUNBOOK = {"summary": "{{ labels.name }} fails: {{ value }}", "runbook_url": RUNBOOK}


def test_slack_pagerduty_and_webhooks_show_the_runbook(
    engine: AlertEngine, clock: Clock, receiver: HttpReceiver
) -> None:
    engine.add_channel("slack", SlackChannel(webhook_url=receiver.url + "/slack"))
    engine.add_channel(
        "pager", PagerDutyChannel(routing_key=ROUTING_KEY, url=receiver.url + "/pagerduty")
    )
    engine.add_channel("hook", WebhookChannel(receiver.url + "/hook"))
    engine.add_rule(
        name="high_error_rate",
        metric="errors",
        aggregation="last",
        threshold=1,
        channels=["slack", "pager", "hook"],
        annotations=WITH_RUNBOOK,
    )
    engine.observe("errors", 5.0, name="POST /checkout")
    engine.evaluate()
    assert engine.flush(10)
    (slack,) = receiver.bodies("/slack")
    escaped = RUNBOOK.replace("&", "&amp;")
    assert slack["blocks"][1]["text"]["text"].endswith(f"<{escaped}|Runbook>")
    (event,) = receiver.bodies("/pagerduty")
    assert event["links"] == [{"href": RUNBOOK, "text": "Runbook"}]
    (hook,) = receiver.bodies("/hook")
    assert hook["commonAnnotations"]["runbook_url"] == RUNBOOK
    assert hook["alerts"][0]["annotations"]["runbook_url"] == RUNBOOK


def test_pagerduty_needs_a_real_looking_routing_key() -> None:
    with pytest.raises(ValueError, match="32-character"):
        PagerDutyChannel(routing_key="short")


def test_webhooks_carry_alertmanager_json_and_an_hmac_signature(
    engine: AlertEngine, clock: Clock, receiver: HttpReceiver
) -> None:
    channel = WebhookChannel(
        url=receiver.url + "/hook", headers={"Authorization": "Bearer t0ken"}, hmac_secret="s3cret"
    )
    engine.add_channel("hook", channel)
    fire_and_resolve(engine, clock, "hook")
    first, second = [r for r in receiver.received if r.path == "/hook"]
    expected = "sha256=" + hmac.new(b"s3cret", first.raw, hashlib.sha256).hexdigest()
    assert first.headers["X-Obskit-Signature"] == expected
    assert first.headers["Authorization"] == "Bearer t0ken"
    body = first.body
    assert (body["version"], body["status"], body["receiver"]) == ("4", "firing", "hook")
    assert body["groupLabels"] == {"alertname": "high_error_rate"}
    assert body["commonLabels"]["severity"] == "critical"
    (alert,) = body["alerts"]
    assert alert["labels"]["name"] == "POST /checkout" and alert["endsAt"] == ZERO_TIME
    assert second.body["status"] == "resolved" and second.body["alerts"][0]["endsAt"]


def test_a_failing_receiver_is_retried_with_backoff_then_succeeds(
    engine: AlertEngine, clock: Clock, receiver: HttpReceiver
) -> None:
    receiver.scripted["/hook"] = [500, 503]
    engine.add_channel("hook", WebhookChannel(receiver.url + "/hook"))
    fire_and_resolve(engine, clock, "hook")
    assert sent(engine, "hook") == {"sent": 2, "failed": 0, "retried": 2, "dropped": 0}


@pytest.mark.parametrize(
    ("path", "retried"), [("/fail/400", 0), ("/fail/503", 2), ("/fail/429", 2)]
)
def test_failures_are_counted_and_logged_never_raised(
    engine: AlertEngine,
    clock: Clock,
    receiver: HttpReceiver,
    path: str,
    retried: int,
    memory: InMemoryExporter,
) -> None:
    engine.add_channel("hook", WebhookChannel(receiver.url + path))
    fire_and_resolve(engine, clock, "hook")
    assert sent(engine, "hook") == {"sent": 0, "failed": 2, "retried": retried * 2, "dropped": 0}
    assert diagnostics.problem_counts()["alerts.channel_failed.hook"] == 2
    assert [e["event"] for e in engine.history()].count("delivery_failed") == 2
    import obskit

    obskit.flush()
    failures = [r for r in memory.logs if r.event == "alert notification failed"]
    assert [(r.level, r.fields["channel"]) for r in failures] == [("warning", "hook")] * 2


def test_a_channel_that_is_down_or_slow_is_given_up_on(
    make_engine: Callable[..., AlertEngine], clock: Clock, receiver: HttpReceiver
) -> None:
    engine = make_engine(group_wait_s=0, max_attempts=2, retry_initial_backoff_s=0.01)
    engine.add_channel("down", WebhookChannel(f"http://127.0.0.1:{free_port()}/hook"))
    receiver.delay_s = 0.5
    engine.add_channel("slow", WebhookChannel(receiver.url + "/hook", timeout_s=0.1))
    engine.add_rule(
        name="r", metric="m", aggregation="last", threshold=1, channels=["down", "slow"]
    )
    engine.observe("m", 5.0)
    engine.evaluate()
    assert engine.flush(10)
    assert sent(engine, "down") == {"sent": 0, "failed": 1, "retried": 1, "dropped": 0}
    assert sent(engine, "slow") == {"sent": 0, "failed": 1, "retried": 1, "dropped": 0}


def test_the_log_channel_logs_through_obskit(
    engine: AlertEngine, clock: Clock, memory: InMemoryExporter
) -> None:
    engine.add_channel("log", LogChannel())
    fire_and_resolve(engine, clock, "log", annotations=WITH_RUNBOOK)
    import obskit

    obskit.flush()
    records = [r for r in memory.logs if "channel" in r.fields]
    assert [(r.level, r.event) for r in records] == [
        ("critical", "[FIRING:1] high_error_rate"),
        ("info", "[RESOLVED:1] high_error_rate"),
    ]
    assert records[0].fields["alerts"][0]["runbook_url"] == RUNBOOK


# -- email -------------------------------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.refuse: str | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult

    return AuthResult(success=data.login == b"alerts" and data.password == b"pa55")


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[Callable[..., tuple[Inbox, int]]]:
    from aiosmtpd.controller import Controller

    controllers: list[Controller] = []

    def start(tls_context: ssl.SSLContext | None = None) -> tuple[Inbox, int]:
        inbox, port = Inbox(), free_port()
        controller = Controller(
            inbox,
            hostname="127.0.0.1",
            port=port,
            authenticator=_authenticator,
            auth_require_tls=tls_context is not None,
            tls_context=tls_context,
            require_starttls=tls_context is not None,
            loop=asyncio.new_event_loop(),
        )
        controller.start()
        controllers.append(controller)
        return inbox, port

    yield start
    for controller in controllers:
        controller.stop()


def test_email_is_sent_over_smtp_with_login(
    engine: AlertEngine, clock: Clock, smtp_server: Callable[..., tuple[Inbox, int]]
) -> None:
    inbox, port = smtp_server()
    engine.add_channel(
        "mail",
        EmailChannel(
            "127.0.0.1",
            port,
            sender="alerts@shop.test",
            recipients=["oncall@shop.test"],
            username="alerts",
            password="pa55",
            starttls=False,
        ),
    )
    fire_and_resolve(engine, clock, "mail", annotations=WITH_RUNBOOK)
    assert sent(engine, "mail") == {"sent": 2, "failed": 0, "retried": 0, "dropped": 0}
    firing = inbox.messages[0]
    assert firing.rcpt_tos == ["oncall@shop.test"]
    message = email.message_from_bytes(firing.content, policy=email.policy.default)
    assert message["Subject"] == "[FIRING:1] high_error_rate"
    text = message.get_content()  # type: ignore[attr-defined]
    assert "high_error_rate is firing (critical)" in text  # names keep their underscores
    assert "POST /checkout fails: 5" in text
    assert f"Runbook: {RUNBOOK}" in text


def test_email_uses_starttls_before_login(
    engine: AlertEngine,
    clock: Clock,
    smtp_server: Callable[..., tuple[Inbox, int]],
    tmp_path: Path,
) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    inbox, port = smtp_server(server_context)
    client_context = ssl.create_default_context(cafile=str(cert))
    engine.add_channel(
        "mail",
        EmailChannel(
            "127.0.0.1",
            port,
            sender="alerts@shop.test",
            recipients=["oncall@shop.test"],
            username="alerts",
            password="pa55",
            ssl_context=client_context,
        ),
    )
    fire_and_resolve(engine, clock, "mail")
    assert sent(engine, "mail") == {"sent": 2, "failed": 0, "retried": 0, "dropped": 0}
    assert len(inbox.messages) == 2


def test_smtp_permanent_refusals_are_not_retried(
    engine: AlertEngine, clock: Clock, smtp_server: Callable[..., tuple[Inbox, int]]
) -> None:
    inbox, port = smtp_server()
    inbox.refuse = "550 no such user"
    engine.add_channel(
        "mail",
        EmailChannel(
            "127.0.0.1", port, sender="a@shop.test", recipients=["nobody@shop.test"], starttls=False
        ),
    )
    fire_and_resolve(engine, clock, "mail")
    assert sent(engine, "mail") == {"sent": 0, "failed": 2, "retried": 0, "dropped": 0}
