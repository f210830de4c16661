"""Opsgenie's Alert API v2, checked by a local stand-in that validates the documented fields
(GenieKey auth, JSON, message/alias/description/entity/source limits, tags, details,
responders, priority) and answers 202 with a requestId, or its error JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import obskit
from obskit import ConfigError, diagnostics
from obskit.alerts import AlertEngine, OpsgenieChannel
from obskit.exporters import InMemoryExporter
from obskit.signals import Alert

from .conftest import Clock, fire_and_resolve, sent
from .receivers import HttpReceiver, http_receiver
from .service_receivers import Opsgenie, create_errors

KEY = "eb243592-faa2-4ba2-a551-1afdf565c889"
RUNBOOK = "https://wiki.shop.test/rb/errors"


@pytest.fixture
def genie() -> Opsgenie:
    return Opsgenie(KEY)


@pytest.fixture
def receiver(genie: Opsgenie) -> Iterator[HttpReceiver]:
    with http_receiver() as running:
        running.handlers["/v2/alerts"] = genie
        yield running


def channel(receiver: HttpReceiver, key: str = KEY, **options: object) -> OpsgenieChannel:
    return OpsgenieChannel(key, url=receiver.url, **options)  # type: ignore[arg-type]


def test_one_opsgenie_alert_per_instance_is_created_acknowledged_and_closed(
    engine: AlertEngine, clock: Clock, receiver: HttpReceiver, genie: Opsgenie
) -> None:
    engine.add_channel("genie", channel(receiver, responders=["team:payments"], tags=["shop"]))
    engine.add_rule(
        name="high_error_rate",
        metric="errors",
        aggregation="last",
        threshold=1,
        severity="critical",
        channels=["genie"],
        annotations={"summary": "{{ labels.name }} fails: {{ value }}", "runbook_url": RUNBOOK},
    )
    engine.observe("errors", 5.0, name="POST /checkout")
    (alert,) = engine.evaluate()
    assert engine.flush(10)
    engine.acknowledge(alert, by="ana", comment="on it")
    assert engine.flush(10)
    clock.advance(60)
    engine.observe("errors", 0.0, name="POST /checkout")
    engine.evaluate()
    assert engine.flush(10)
    assert sent(engine, "genie") == {"sent": 3, "failed": 0, "retried": 0, "dropped": 0}
    alias = f"obskit-{alert.fingerprint}"
    assert [(action, name) for action, name, _ in genie.requests] == [
        ("create", alias),
        ("acknowledge", alias),
        ("close", alias),
    ]
    assert genie.alerts[alias]["status"] == "closed"
    create = genie.requests[0][2]
    assert create["message"] == "high_error_rate: POST /checkout fails: 5"
    assert (create["priority"], create["tags"]) == ("P1", ["shop", "critical"])
    assert create["responders"] == [{"type": "team", "name": "payments"}]
    assert create["details"]["runbook_url"] == RUNBOOK
    assert create["details"]["name"] == "POST /checkout"
    assert f"Runbook: {RUNBOOK}" in create["description"]
    assert genie.requests[1][2] == {"source": "obskit", "user": "ana", "note": "on it"}
    assert genie.requests[2][2]["note"].startswith("resolved at ")


def test_a_refusal_is_reported_once_with_opsgenies_message_and_never_the_key(
    engine: AlertEngine,
    clock: Clock,
    receiver: HttpReceiver,
    memory: InMemoryExporter,
    capfd: pytest.CaptureFixture[str],
) -> None:
    other = "0c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5"
    genie = channel(receiver, key=other)
    engine.add_channel("genie", genie)
    fire_and_resolve(engine, clock, "genie")
    assert sent(engine, "genie") == {"sent": 0, "failed": 2, "retried": 0, "dropped": 0}
    assert diagnostics.problem_counts()["alerts.channel_failed.genie"] == 2
    obskit.flush()
    err = capfd.readouterr().err
    (line,) = [line for line in err.splitlines() if "'genie'" in line]
    assert "HTTP 401" in line and "Could not authenticate" in line
    everything = err + repr(genie) + json.dumps(engine.history(), default=str)
    everything += json.dumps([r.to_dict() for r in memory.logs], default=str)
    assert "not sent" in everything and other not in everything and "GenieKey" not in everything


def test_field_errors_come_back_as_opsgenie_lists_them(
    engine: AlertEngine, clock: Clock, receiver: HttpReceiver, capfd: pytest.CaptureFixture[str]
) -> None:
    receiver.handlers["/v2/alerts"] = lambda received: (
        422,
        json.dumps(
            {
                "message": "Request body is not processable. Please check the errors.",
                "errors": {"message": "Message can not be empty."},
                "took": 0.002,
                "requestId": "a3a6c3c5-5c41-4f5f-a3f6-0e6e9a0d1c2b",
            }
        ).encode(),
        "application/json",
    )
    engine.add_channel("genie", channel(receiver, send_resolved=False))
    fire_and_resolve(engine, clock, "genie")
    err = capfd.readouterr().err
    assert (
        "HTTP 422 Unprocessable Entity: Request body is not processable. Please check the "
        "errors. (message: Message can not be empty.)"
    ) in err


@pytest.mark.parametrize("status", [429, 500])
def test_throttling_and_server_errors_are_retried(
    engine: AlertEngine, clock: Clock, receiver: HttpReceiver, genie: Opsgenie, status: int
) -> None:
    receiver.scripted["/v2/alerts"] = [status]
    engine.add_channel("genie", channel(receiver))
    fire_and_resolve(engine, clock, "genie")
    assert sent(engine, "genie") == {"sent": 2, "failed": 0, "retried": 1, "dropped": 0}
    assert [action for action, _, _ in genie.requests] == ["create", "close"]


def test_the_region_picks_the_api_and_mistakes_say_what_to_change() -> None:
    assert OpsgenieChannel(KEY).url == "https://api.opsgenie.com"
    assert OpsgenieChannel(f" {KEY}\n", region="EU").url == "https://api.eu.opsgenie.com"
    mistakes: list[tuple[dict[str, object], str]] = [
        ({"region": "de"}, "region must be 'us'"),
        ({"responders": ["ops"]}, "'team:<name>'"),
        ({"responders": [{"type": "team"}]}, "id/name/username"),
        ({"priorities": {"critical": "P0"}}, "P1 to P5"),
        ({"tags": ["x" * 51]}, "1-50 characters"),
        ({"url": "api.opsgenie.com"}, "https://"),
    ]
    for options, message in mistakes:
        with pytest.raises(ConfigError, match=message):
            OpsgenieChannel(KEY, **options)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="API integration"):
        OpsgenieChannel("")


text = st.text(max_size=3000)


@given(
    rule=st.text(min_size=1, max_size=300),
    severity=st.sampled_from(["critical", "error", "warning", "info", "page-" + "x" * 60]),
    labels=st.dictionaries(st.text(max_size=200), text, max_size=20),
    annotations=st.fixed_dictionaries(
        {}, optional={"summary": text, "description": st.text(max_size=20000), "runbook_url": text}
    ),
    service=st.text(max_size=600),
)
@example(  # CI found it: a rule named only by a Unicode space gave a blank message
    rule="\x85", severity="critical", labels={}, annotations={}, service=""
)
def test_every_create_request_is_within_opsgenies_limits(
    rule: str,
    severity: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    service: str,
) -> None:
    alert = Alert(
        0, rule, "firing", severity, labels=labels, annotations=annotations, service=service,
        fingerprint="a4b9e84dd7fd0d4f",
    )  # fmt: skip
    assert create_errors(OpsgenieChannel(KEY).create(alert)) == {}


def test_an_escalation_that_raises_the_severity_raises_the_priority(
    engine: AlertEngine, clock: Clock, receiver: HttpReceiver, genie: Opsgenie
) -> None:
    engine.add_channel("genie", channel(receiver))
    engine.add_escalation_policy(
        name="oncall", levels=[{"after_s": 600, "raise_severity": "critical"}]
    )
    engine.add_rule(
        name="queue_backlog",
        metric="queue.depth",
        aggregation="last",
        window_s=3600,
        threshold=1000,
        severity="warning",
        channels=["genie"],
        escalation="oncall",
    )
    engine.observe("queue.depth", 5000.0)
    (alert,) = engine.evaluate()
    assert engine.flush(10)
    alias = f"obskit-{alert.fingerprint}"
    assert genie.alerts[alias]["priority"] == "P3"
    clock.advance(600)
    engine.evaluate()
    assert engine.flush(10)
    assert [(action, body.get("priority")) for action, _, body in genie.requests] == [
        ("create", "P3"),
        ("create", "P1"),  # Opsgenie keeps the first create's fields: counted, not updated
        ("priority", "P1"),
    ]
    assert genie.alerts[alias]["priority"] == "P1"
