"""Routing exported as an Alertmanager configuration, checked by the real amtool and served by
the real Alertmanager."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from obskit.alerts import (
    AlertEngine,
    AlertmanagerChannel,
    EmailChannel,
    LogChannel,
    OpsgenieChannel,
    PagerDutyChannel,
    SlackChannel,
    TeamsChannel,
    TwilioSMSChannel,
    WebhookChannel,
)
from obskit.cli import main
from obskit.diagnostics import ConfigError

from .conftest import Clock
from .promstack import alertmanager, get_json, need, run

ROUTING_KEY = "0123456789abcdef0123456789abcdef"


def routed_engine(make_engine: Callable[..., AlertEngine]) -> AlertEngine:
    engine = make_engine(group_wait_s=10, group_interval_s=120, repeat_interval_s=7200)
    engine.add_channel(
        "hook", WebhookChannel("http://127.0.0.1:9/hook", headers={"Authorization": "Bearer t0ken"})
    )
    engine.add_channel("slack", SlackChannel("https://hooks.slack.example/T/B/X", username="bot"))
    engine.add_channel("pager", PagerDutyChannel(routing_key=ROUTING_KEY))
    engine.add_channel(
        "mail",
        EmailChannel(
            "smtp.example.com",
            587,
            sender="a@example.com",
            recipients=["oncall@example.com", "b@example.com"],
            username="alerts",
            password="pw",
        ),
    )
    engine.add_channel("log", LogChannel())
    engine.add_rule(
        name="high_error_rate",
        metric="request.errors",
        aggregation="rate",
        threshold=1,
        channels=["pager", "slack"],
        group_by=["alertname", "http.route"],
    )
    engine.add_rule(
        name="disk_full", metric="disk.used", threshold=0.9, channels=["mail", "hook", "log"]
    )
    engine.add_inhibit_rule(
        source_matchers={"severity": "critical"},
        target_matchers={"severity": "warning"},
        equal=["http.route"],
    )
    return engine


def test_the_exported_config_passes_amtool_and_routes_like_obskit(
    make_engine: Callable[..., AlertEngine], tmp_path: Path, clock: Clock
) -> None:
    engine = routed_engine(make_engine)
    start = dt.datetime(2026, 11, 30, 22, 30, tzinfo=dt.timezone.utc).timestamp()
    clock.now = start - 60
    engine.silence(
        {"alertname": "disk_full", "mount": "/var"}, duration_s=3 * 3600 + 60, starts_at=start
    )
    export = engine.export_alertmanager_config()
    path = export.write(tmp_path / "alertmanager.yml")
    status, output = run("amtool", "check-config", str(path))
    assert status == 0, output

    config = yaml.safe_load(export.text)
    root = config["route"]
    assert (root["group_wait"], root["group_interval"], root["repeat_interval"]) == (
        "10s",
        "2m",
        "2h",
    )
    routes = [(r["receiver"], r["matchers"], r["group_by"]) for r in root["routes"]]
    assert routes == [
        ("pager", ['alertname="high_error_rate"'], ["..."]),  # one incident per alert
        ("slack", ['alertname="high_error_rate"'], ["alertname", "http_route"]),
        ("mail", ['alertname="disk_full"'], ["alertname"]),
        ("hook", ['alertname="disk_full"'], ["alertname"]),
    ]
    assert all(r["continue"] for r in root["routes"])
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["hook"]["webhook_configs"][0]["http_config"] == {
        "authorization": {"type": "Bearer", "credentials": "t0ken"}
    }
    assert receivers["pager"]["pagerduty_configs"][0]["routing_key"] == ROUTING_KEY
    assert receivers["mail"]["email_configs"][0]["to"] == "oncall@example.com, b@example.com"
    assert config["inhibit_rules"] == [
        {
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity="warning"'],
            "equal": ["http_route"],
        }
    ]
    # the silence: 22:30 to 01:31 the next day, muting disk_full{mount="/var"} only
    (interval,) = config["time_intervals"]
    assert interval["time_intervals"] == [
        {
            "years": ["2026"],
            "months": ["november"],
            "days_of_month": ["30"],
            "times": [{"start_time": "22:30", "end_time": "24:00"}],
        },
        {
            "years": ["2026"],
            "months": ["december"],
            "days_of_month": ["1"],
            "times": [{"start_time": "00:00", "end_time": "01:31"}],
        },
    ]
    disk = [r for r in root["routes"] if r["matchers"] == ['alertname="disk_full"']]
    assert all(r["routes"][0]["mute_time_intervals"] == [interval["name"]] for r in disk)
    assert all("routes" not in r for r in root["routes"] if r not in disk)
    report = export.report()
    assert "channel 'log' (LogChannel)" in report and "acknowledgement" in report


def test_alertmanager_serves_the_exported_config(make_engine: Callable[..., AlertEngine]) -> None:
    engine = routed_engine(make_engine)
    with alertmanager(engine.export_alertmanager_config().text) as url:
        status = get_json(url + "/api/v2/status")
        loaded = yaml.safe_load(status["config"]["original"])
        assert [r["receiver"] for r in loaded["route"]["routes"]] == [
            "pager",
            "slack",
            "mail",
            "hook",
        ]


def test_what_has_no_equivalent_is_reported_and_refused_when_strict(
    make_engine: Callable[..., AlertEngine],
) -> None:
    engine = make_engine()
    engine.add_channel(
        "hook",
        WebhookChannel("http://127.0.0.1:9/hook", hmac_secret="s", headers={"X-Team": "web"}),
    )
    engine.add_channel("am", AlertmanagerChannel("http://127.0.0.1:9093"))
    engine.add_escalation_policy(name="checkout", levels=[{"after_s": 0, "channels": ["hook"]}])
    engine.add_rule(
        name="r", metric="m", threshold=1, channels=["hook", "am"], escalation="checkout"
    )
    export = engine.export_alertmanager_config()
    skipped = dict(export.skipped)
    assert set(skipped) == {
        "channel 'hook' (WebhookChannel) header 'X-Team'",
        "channel 'hook' (WebhookChannel) hmac_secret",
        "channel 'am' (AlertmanagerChannel)",
        "escalation policy 'checkout'",
    }
    assert "escalation" in skipped["escalation policy 'checkout'"]
    with pytest.raises(ConfigError, match=r"4 item\(s\) have no equivalent"):
        engine.export_alertmanager_config(strict=True)


def test_opsgenie_exports_as_opsgenie_configs_that_amtool_accepts(
    make_engine: Callable[..., AlertEngine], tmp_path: Path
) -> None:
    engine = make_engine()
    key = "eb243592-faa2-4ba2-a551-1afdf565c889"
    engine.add_channel(
        "genie",
        OpsgenieChannel(key, region="eu", responders=["team:payments"], tags=["shop", "web"]),
    )
    engine.add_channel("teams", TeamsChannel("https://teams.example/workflows/1"))
    sms = TwilioSMSChannel("AC" + "0" * 32, "t", to="+14155550100", from_="+14155550199")
    engine.add_channel("sms", sms)
    engine.add_rule(name="r", metric="m", threshold=1, channels=["genie", "teams", "sms"])
    export = engine.export_alertmanager_config()
    status, output = run("amtool", "check-config", str(export.write(tmp_path / "am.yml")))
    assert status == 0, output
    config = yaml.safe_load(export.text)
    (genie,) = [r for r in config["receivers"] if r["name"] == "genie"]
    assert genie["opsgenie_configs"] == [
        {
            "api_key": key,
            "api_url": "https://api.eu.opsgenie.com/",
            "send_resolved": True,
            "source": "obskit",
            "priority": '{{ if eq .CommonLabels.severity "critical" }}P1'
            '{{ else if eq .CommonLabels.severity "error" }}P2'
            '{{ else if eq .CommonLabels.severity "warning" }}P3'
            '{{ else if eq .CommonLabels.severity "info" }}P5{{ else }}P3{{ end }}',
            "responders": [{"type": "team", "name": "payments"}],
            "tags": "shop,web",
        }
    ]
    (route,) = [r for r in config["route"]["routes"] if r["receiver"] == "genie"]
    assert route["group_by"] == ["..."]  # one Opsgenie alert per alert, as obskit sends them
    skipped = dict(export.skipped)
    assert "0.28" in skipped["channel 'teams' (TeamsChannel)"]
    assert "SMS" in skipped["channel 'sms' (TwilioSMSChannel)"]


def test_the_cli_exports_from_a_python_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    need("amtool")
    app = tmp_path / "alerting.py"
    app.write_text(
        "import obskit.alerts as alerts\n"
        "alerts.add_channel('hook', alerts.WebhookChannel('http://127.0.0.1:9/hook'))\n"
        "alerts.add_channel('log', alerts.LogChannel())\n"
        "alerts.add_rule(name='r', metric='m', threshold=1, channels=['hook', 'log'])\n"
    )
    out = tmp_path / "alertmanager.yml"
    assert main(["export", "alertmanager-config", str(app), "-o", str(out)]) == 0
    assert run("amtool", "check-config", str(out))[0] == 0
    assert "skipped channel 'log' (LogChannel)" in capsys.readouterr().err
    assert main(["export", "alertmanager-config", str(app), "-o", str(out), "--strict"]) == 1
