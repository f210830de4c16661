"""Microsoft Teams: Adaptive Cards posted to a Workflows webhook, checked by a local stand-in
that validates the documented message (one card attachment, schema version, 28 KB)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

import obskit
from obskit import ConfigError, diagnostics
from obskit.alerts import AlertEngine, Notification, TeamsChannel
from obskit.exporters import InMemoryExporter
from obskit.signals import Alert

from .conftest import Clock, fire_and_resolve, sent
from .receivers import HttpReceiver, Received, http_receiver
from .service_receivers import TEAMS_MAX_BYTES, card_errors, teams, teams_errors

SIGNATURE = "sig=Zm9vYmFyc2VjcmV0c2lnbmF0dXJl"
RUNBOOK = "https://wiki.shop.test/runbooks/high_error_rate"


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as running:
        running.handlers["/teams"] = teams
        yield running


def webhook(receiver: HttpReceiver) -> str:
    return f"{receiver.url}/teams/workflows/7f3a/triggers/manual/run?api-version=1&{SIGNATURE}"


def cards(receiver: HttpReceiver) -> list[Received]:
    return [r for r in receiver.received if r.path.startswith("/teams")]


def test_teams_gets_an_adaptive_card_when_firing_and_another_when_resolved(
    engine: AlertEngine, clock: Clock, receiver: HttpReceiver
) -> None:
    engine.add_channel("teams", TeamsChannel(webhook(receiver)))
    fire_and_resolve(
        engine,
        clock,
        "teams",
        annotations={"summary": "{{ labels.name }} fails: {{ value }}", "runbook_url": RUNBOOK},
    )
    assert sent(engine, "teams") == {"sent": 2, "failed": 0, "retried": 0, "dropped": 0}
    firing, resolved = cards(receiver)
    assert teams_errors(firing) == [] and teams_errors(resolved) == []
    card = firing.body["attachments"][0]["content"]
    title, block = card["body"]
    assert (title["text"], title["color"]) == ("[FIRING:1] high_error_rate", "Attention")
    texts = [item.get("text") for item in block["items"]]
    assert texts[:2] == ["**high_error_rate** is **firing** (critical)", "POST /checkout fails: 5"]
    facts = {fact["title"]: fact["value"] for fact in block["items"][2]["facts"]}
    assert facts["Runbook"] == f"[{RUNBOOK}]({RUNBOOK})"
    assert "name=POST /checkout" in facts["Labels"] and "severity=critical" in facts["Labels"]
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Runbook", "url": RUNBOOK}]
    title = resolved.body["attachments"][0]["content"]["body"][0]
    assert (title["text"], title["color"]) == ("[RESOLVED:1] high_error_rate", "Good")


def test_a_card_the_service_refuses_is_reported_once_with_its_answer_and_no_secret(
    engine: AlertEngine,
    clock: Clock,
    receiver: HttpReceiver,
    memory: InMemoryExporter,
    capfd: pytest.CaptureFixture[str],
) -> None:
    receiver.handlers["/teams"] = lambda received: (
        400,
        b"The workflow 'Post to a channel' is turned off.",
        "text/plain",
    )
    channel = TeamsChannel(webhook(receiver))
    engine.add_channel("teams", channel)
    fire_and_resolve(engine, clock, "teams")
    assert sent(engine, "teams") == {"sent": 0, "failed": 2, "retried": 0, "dropped": 0}
    obskit.flush()
    err = capfd.readouterr().err
    reported = [line for line in err.splitlines() if "'teams'" in line]
    assert len(reported) == 1 and "HTTP 400" in reported[0]
    assert "The workflow 'Post to a channel' is turned off." in reported[0]
    everything = err + repr(channel) + json.dumps(engine.history(), default=str)
    everything += json.dumps([r.to_dict() for r in memory.logs], default=str)
    assert "failed" in everything and SIGNATURE not in everything and "/teams/" not in everything
    assert diagnostics.problem_counts()["alerts.channel_failed.teams"] == 2


@pytest.mark.parametrize("status", [429, 502])
def test_throttled_or_failing_teams_is_retried(
    engine: AlertEngine, clock: Clock, receiver: HttpReceiver, status: int
) -> None:
    url = webhook(receiver)
    receiver.scripted[url.removeprefix(receiver.url)] = [status]
    engine.add_channel("teams", TeamsChannel(url))
    fire_and_resolve(engine, clock, "teams")
    assert sent(engine, "teams") == {"sent": 2, "failed": 0, "retried": 1, "dropped": 0}


def test_a_long_notification_keeps_under_28_kb_and_counts_what_it_left_out() -> None:
    alerts = [
        Alert(
            timestamp=0,
            rule="disk_full",
            state="firing",
            severity="critical",
            labels={"host": f"db-{n}", "mount": "/var/lib/" + "x" * 300},
            annotations={"summary": "disk is full " * 150, "runbook_url": f"{RUNBOOK}/{n}"},
        )
        for n in range(200)
    ]
    message = TeamsChannel("https://teams.example/hook").payload(
        Notification("teams", "first", alerts)
    )
    raw = json.dumps(message).encode()
    assert len(raw) <= TEAMS_MAX_BYTES
    card = message["attachments"][0]["content"]
    assert card_errors(card) == []
    shown = sum(1 for element in card["body"] if element["type"] == "Container")
    assert 1 <= shown < 200
    assert card["body"][-1]["text"] == f"... and {200 - shown} more"
    assert len(card["actions"]) == 3  # buttons for the first runbooks, the rest in the facts


text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=2000)


@given(
    st.lists(
        st.builds(
            Alert,
            timestamp=st.just(0.0),
            rule=st.text(min_size=1, max_size=80),
            state=st.sampled_from(["firing", "resolved"]),
            severity=st.sampled_from(["critical", "warning", "info"]),
            value=st.none() | st.floats(allow_nan=False),
            labels=st.dictionaries(st.text(max_size=40), text, max_size=5),
            annotations=st.fixed_dictionaries({}, optional={"summary": text, "runbook_url": text}),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_every_card_is_one_teams_accepts(alerts: list[Alert]) -> None:
    message = TeamsChannel("https://teams.example/hook").payload(
        Notification("teams", "first", alerts)
    )
    raw = json.dumps(message, ensure_ascii=False).encode()
    received = Received("/teams", {"Content-Type": "application/json"}, raw, json.loads(raw))
    errors = teams_errors(received)
    # a card of one alert may only be too big when a single alert's text is
    assert errors == [] or (len(alerts) == 1 and "28 KB" in errors[0])


def test_teams_configuration_mistakes_say_what_to_change() -> None:
    with pytest.raises(ConfigError, match="Workflows"):
        TeamsChannel("teams.example/hook")
    with pytest.raises(ConfigError, match="timeout_s"):
        TeamsChannel("https://teams.example/hook", timeout_s=0)
    assert "teams.example" not in repr(TeamsChannel("https://teams.example/hook"))
