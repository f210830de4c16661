"""Rules are checked when loaded: every mistake is listed, naming the rule and the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import obskit.alerts
from obskit.alerts import AlertEngine, AlertRule, LogChannel, RuleError
from obskit.config import ConfigError

GOOD = {
    "name": "high_error_rate",
    "metric": "request.errors",
    "aggregation": "rate",
    "window_s": "5m",
    "op": ">",
    "threshold": 0.5,
    "for_s": "1m",
    "severity": "critical",
    "annotations": {"summary": "{{ labels.name }} fails {{ value }}/s"},
}


def test_a_rule_from_keywords_a_dict_or_a_model_is_the_same_rule() -> None:
    assert AlertRule(**GOOD) == AlertRule.model_validate(GOOD)
    rule = AlertRule(**GOOD)
    assert (rule.window_s, rule.for_s, rule.group_by) == (300.0, 60.0, ("alertname",))
    assert AlertRule.model_validate(rule.to_dict()) == rule


def test_a_bad_rule_file_lists_every_error_with_rule_and_field(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        """
rules:
  - name: high_error_rate
    metric: request.errors
    op: "=>"
    threshold: 0.5
    for_s: soon
  - name: slow_checkout
    metric: request.duration_ms
    aggregation: p95
    thresold: 500
    severity: page
  - name: hovering
    metric: temp
    threshold: 100
    resolve_threshold: 120
    annotations: {summary: "{{ vaule }}"}
""",
        encoding="utf-8",
    )
    with pytest.raises(RuleError) as caught:
        AlertEngine().load_rules(path)
    message = str(caught.value)
    assert message.startswith("rules.yaml: 7 problems:")
    for expected in (
        "rule 'high_error_rate' (#1): field 'op': Input should be '>', '>=', '<', '<=', '=='",
        "rule 'high_error_rate' (#1): field 'for_s': 'soon' is not a duration",
        "rule 'slow_checkout' (#2): field 'thresold': unknown field; did you mean 'threshold'?",
        "rule 'slow_checkout' (#2): field 'threshold': a threshold is required",
        "rule 'slow_checkout' (#2): field 'severity': Input should be 'info', 'warning', "
        "'error' or 'critical' (got 'page')",
        "rule 'hovering' (#3): field 'resolve_threshold': with op '>' the alert resolves when "
        "the value falls back, so resolve_threshold (120) must be <= threshold (100)",
        "rule 'hovering' (#3): field 'annotations': unknown template variable 'vaule'",
    ):
        assert expected in message, expected


def test_nothing_is_loaded_unless_everything_is_valid() -> None:
    engine = AlertEngine()
    with pytest.raises(RuleError):
        engine.load_rules([GOOD, {**GOOD, "name": "other", "window_s": -1}])
    assert engine.rules() == []
    engine.close()


def test_rules_load_from_json_and_yaml_alike(tmp_path: Path) -> None:
    (tmp_path / "rules.json").write_text(json.dumps({"rules": [GOOD]}), encoding="utf-8")
    (tmp_path / "rules.yml").write_text(
        "- name: x\n  metric: m\n  threshold: 1\n", encoding="utf-8"
    )
    engine = AlertEngine()
    assert [r.name for r in engine.load_rules(tmp_path / "rules.json")] == ["high_error_rate"]
    assert [r.name for r in engine.load_rules(tmp_path / "rules.yml")] == ["x"]
    engine.close()


def test_unreadable_and_malformed_files_say_so(tmp_path: Path) -> None:
    engine = AlertEngine()
    with pytest.raises(RuleError, match="cannot read rule file"):
        engine.load_rules(tmp_path / "missing.yaml")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(RuleError, match=r"bad\.json: not valid JSON"):
        engine.load_rules(tmp_path / "bad.json")
    with pytest.raises(RuleError, match="unknown section 'rule'; did you mean 'rules'"):
        engine.load_rules({"rule": []})
    engine.close()


def test_a_rule_naming_an_unknown_channel_is_refused_with_the_fix() -> None:
    engine = AlertEngine()
    engine.add_channel("log", LogChannel())
    with pytest.raises(RuleError) as caught:
        engine.add_rule(**GOOD, channels=["pagr"])
    assert (
        "field 'channels': no channel called 'pagr'; add it with add_channel('pagr', ...) "
        "before the rule (known: log)" in str(caught.value)
    )
    engine.close()


def test_duplicate_rule_names_are_refused() -> None:
    engine = AlertEngine()
    engine.add_rule(**GOOD)
    with pytest.raises(RuleError, match="a rule called 'high_error_rate' already exists"):
        engine.add_rule(**GOOD)
    engine.remove_rule("high_error_rate")
    engine.add_rule(**GOOD)
    engine.close()


def test_rule_sanity_checks() -> None:
    with pytest.raises(ValueError, match="label 'severity' is set by the rule's severity"):
        AlertRule(**GOOD, labels={"severity": "page"})
    with pytest.raises(ValueError, match="resolve_threshold has no meaning with op '=='"):
        AlertRule(**{**GOOD, "op": "=="}, resolve_threshold=1)
    with pytest.raises(ValueError, match="must be a whole number"):
        AlertRule(**GOOD, resolution_s=7)
    with pytest.raises(ValueError, match="cannot import detector"):
        AlertRule(**{**GOOD, "threshold": None}, detector="nowhere.module:Thing")
    assert AlertRule(**GOOD, resolution_s="30s").resolution_s == 30.0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"group_interval_s": 300, "repeat_interval_s": 60},
            "repeat_interval_s (60) is shorter than group_interval_s (300)",
        ),
        ({"group_wait_s": -1}, "group_wait_s must be >= 0"),
        ({"evaluation_interval_s": 0}, "evaluation_interval_s must be > 0"),
    ],
)
def test_contradictory_routing_settings_are_refused(
    settings: dict[str, float], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AlertEngine(**settings)


def test_escalation_levels_must_increase_and_use_known_channels(
    make_engine: Callable[..., AlertEngine],
) -> None:
    engine = make_engine()
    engine.add_channel("slack", LogChannel())
    with pytest.raises(RuleError, match="level delays must strictly increase"):
        engine.add_escalation_policy(
            name="p",
            levels=[{"after_s": 60, "channels": ["slack"]}, {"after_s": 60, "channels": ["slack"]}],
        )
    with pytest.raises(RuleError, match="no channel called 'pager'"):
        engine.add_escalation_policy(name="p", levels=[{"channels": ["pager"]}])
    with pytest.raises(RuleError, match="no escalation policy called 'p'"):
        engine.add_rule(**GOOD, escalation="p")


def test_the_default_engine_takes_rules_from_the_module(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - name: x\n    metric: m\n    threshold: 1\n", encoding="utf-8")
    obskit.alerts.load_rules(path)
    obskit.alerts.add_rule(**GOOD)
    assert [r.name for r in obskit.alerts.rules()] == ["x", "high_error_rate"]
    obskit.alerts.remove_rule("x")
    assert [r.name for r in obskit.alerts.rules()] == ["high_error_rate"]


def test_default_channels_must_exist_before_rules_rely_on_them(
    make_engine: Callable[..., AlertEngine],
) -> None:
    engine = make_engine(default_channels=["log"])
    with pytest.raises(RuleError, match="default_channels name 'log'"):
        engine.add_rule(**GOOD)
    engine.add_channel("log", LogChannel())
    engine.add_rule(**GOOD)
