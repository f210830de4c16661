"""Channels declared in a rule file: built from their type and arguments, secrets read from
the environment, every mistake listed with the channel's name, nothing installed unless all
is valid."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from obskit.alerts import (
    AlertEngine,
    OpsgenieChannel,
    RuleError,
    TeamsChannel,
    TwilioSMSChannel,
)
from obskit.alerts.declared_channels import declared_channels
from obskit.alerts.loading import parse_rules

from .conftest import Clock, fire_and_resolve, sent
from .receivers import http_receiver
from .service_receivers import teams

KEY = "eb243592-faa2-4ba2-a551-1afdf565c889"
ENV = {
    "OPSGENIE_API_KEY": KEY,
    "TEAMS_WORKFLOW_URL": "https://teams.example/workflows/1?sig=s3cret",
    "TWILIO_AUTH_TOKEN": "t0ken-t0ken",
}


def test_a_section_builds_each_type_with_secrets_from_the_environment() -> None:
    problems: list[str] = []
    channels = declared_channels(
        {
            "pager": {"type": "opsgenie", "api_key_env": "OPSGENIE_API_KEY", "region": "eu"},
            "teams": {"type": "teams", "webhook_url_env": "TEAMS_WORKFLOW_URL"},
            "sms": {
                "type": "twilio",
                "account_sid": "AC" + "0" * 32,
                "auth_token_env": "TWILIO_AUTH_TOKEN",
                "to": ["+14155550100"],
                "from": "+14155550199",
            },
        },
        problems,
        environ=ENV,
    )
    assert problems == []
    pager, team, sms = channels["pager"], channels["teams"], channels["sms"]
    assert isinstance(pager, OpsgenieChannel) and pager.url == "https://api.eu.opsgenie.com"
    assert isinstance(team, TeamsChannel) and team.webhook_url == ENV["TEAMS_WORKFLOW_URL"]
    assert isinstance(sms, TwilioSMSChannel) and sms.sender == {"From": "+14155550199"}


def test_every_mistake_is_listed_with_the_channel_and_the_field() -> None:
    problems: list[str] = []
    channels = declared_channels(
        {
            "a": {"type": "opsgenei", "api_key": KEY},
            "b": {"type": "opsgenie", "api_key_env": "NOT_SET"},
            "c": {"type": "opsgenie", "api_key": KEY, "regoin": "eu"},
            "d": {"type": "opsgenie", "api_key": KEY, "region": "de"},
            "e": "slack",
            "taken": {"type": "log"},
        },
        problems,
        taken={"taken": object()},
        environ={},
    )
    assert channels == {}
    assert problems == [
        "channel 'a': field 'type': 'opsgenei' is not a channel type; did you mean 'opsgenie'? "
        "(one of log, webhook, slack, pagerduty, email, alertmanager, teams, twilio, opsgenie)",
        "channel 'b': field 'api_key_env': environment variable 'NOT_SET' is not set",
        "channel 'c': field 'regoin': not an argument of opsgenie; did you mean 'region'?",
        "channel 'd': OpsgenieChannel: region must be 'us' (api.opsgenie.com) or 'eu' "
        "(api.eu.opsgenie.com), not 'de'",
        "channel 'e': expected a mapping with a type, not str",
        "channel 'taken': a channel called 'taken' already exists",
    ]


def test_a_rule_file_declares_the_channels_its_rules_use(
    make_engine: Callable[..., AlertEngine],
    clock: Clock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with http_receiver() as receiver:
        receiver.handlers["/teams"] = teams
        monkeypatch.setenv("TEAMS_WORKFLOW_URL", receiver.url + "/teams/run?sig=s3cret")
        path = tmp_path / "alerting.yaml"
        path.write_text(
            "channels:\n  teams: {type: teams, webhook_url_env: TEAMS_WORKFLOW_URL}\nrules: []\n"
        )
        engine = make_engine()
        engine.load_rules(path)
        fire_and_resolve(engine, clock, "teams")
        assert sent(engine, "teams") == {"sent": 2, "failed": 0, "retried": 0, "dropped": 0}


def test_nothing_is_installed_when_a_declared_channel_is_wrong(
    make_engine: Callable[..., AlertEngine],
) -> None:
    engine = make_engine()
    rules = {
        "channels": {"pager": {"type": "opsgenie", "api_key": "not-a-key"}},
        "rules": [{"name": "r", "metric": "m", "threshold": 1, "channels": ["pager"]}],
    }
    with pytest.raises(RuleError, match="channel 'pager': OpsgenieChannel: api_key must be"):
        engine.load_rules(rules)
    assert engine.rules() == [] and "pager" not in engine.channels
    with pytest.raises(RuleError, match="a channel called 'pager' already exists"):
        engine.add_channel("pager", TeamsChannel("https://teams.example/hook"))
        engine.load_rules({"channels": {"pager": {"type": "log"}}})


def test_an_export_reads_the_rules_without_the_channels_secrets() -> None:
    data = {
        "channels": {"pager": {"type": "opsgenie", "api_key_env": "NOT_SET_IN_CI"}},
        "rules": [{"name": "r", "metric": "m", "threshold": 1, "channels": ["pager"]}],
    }
    parsed = parse_rules(data, channels=None)  # what export reads: channels are not checked
    assert [rule.name for rule in parsed.rules] == ["r"] and parsed.channels == {}
    with pytest.raises(RuleError, match="'NOT_SET_IN_CI' is not set"):
        parse_rules(data, channels=())
