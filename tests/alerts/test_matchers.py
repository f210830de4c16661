"""Label matchers and the policies built on them behave as in Prometheus and Alertmanager."""

from __future__ import annotations

from pathlib import Path

import pytest

from obskit.alerts import AlertEngine, InhibitRule, Silence, parse_matchers
from obskit.alerts.matchers import parse_matcher, re2_problem
from obskit.alerts.rules import parse_duration
from obskit.diagnostics import ConfigError

from .promstack import need, run


def test_the_prometheus_selector_syntax_parses() -> None:
    matchers = parse_matchers('{route=~"/api/(cart|pay)", env!="dev", note="a, \\"quoted\\" b"}')
    assert [(m.name, m.op, m.value) for m in matchers] == [
        ("route", "=~", "/api/(cart|pay)"),
        ("env", "!=", "dev"),
        ("note", "=", 'a, "quoted" b'),
    ]


def test_regexes_are_anchored_and_missing_labels_read_as_empty() -> None:
    assert parse_matcher("route=~/api/.*").matches({"route": "/api/cart"})
    assert not parse_matcher("route=~/api/.*").matches({"route": "/v2/api/cart"})
    assert parse_matcher('team=""').matches({})
    assert parse_matcher("team!~.+").matches({})


def test_bad_matchers_say_how_to_write_them() -> None:
    with pytest.raises(ValueError, match="write label=value"):
        parse_matcher("route")
    with pytest.raises(ValueError, match="bad regular expression"):
        parse_matcher("route=~(")


def test_an_alert_matching_both_sides_is_not_inhibited_by_its_peers() -> None:
    rule = InhibitRule(
        source_matchers=["severity=~critical|warning"],
        target_matchers={"severity": "warning"},
        equal=["name"],
    )
    warning = {"severity": "warning", "name": "/cart", "alertname": "a"}
    other_warning = {"severity": "warning", "name": "/cart", "alertname": "b"}
    critical = {"severity": "critical", "name": "/cart", "alertname": "c"}
    assert not rule.mutes(warning, [warning, other_warning])  # both match both sides
    assert rule.mutes(warning, [warning, critical])


def test_a_silence_is_active_from_its_start_to_its_end() -> None:
    silence = Silence.create({"name": "/cart"}, starts_at=100, ends_at=200)
    assert [silence.is_active(t) for t in (99, 100, 199, 200)] == [False, True, True, False]
    assert silence.matches({"name": "/cart"}) and not silence.matches({"name": "/"})


@pytest.mark.parametrize(
    ("text", "seconds"), [("250ms", 0.25), ("1h30m", 5400.0), ("2d", 172800.0), ("45", 45.0)]
)
def test_durations_read_like_prometheus(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_a_bad_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration("5 minutes")


PYTHON_ONLY = [
    "(?!/health).*",
    "(?=/api)/api.*",
    "(?<=a)b",
    "(?<!a)b",
    r"(a)\1",
    "(?P<x>a)(?P=x)",
    "(?>a)",
    "a*+",
    "(?x)a",
    "a(?#note)",
    r"a\Z",
    "(a)?(?(1)b|c)",
]
RE2_TOO = [r"/api/(cart|checkout)", r"\d+\.\d+", "(?i)get|post", "(?P<route>/[a-z]+)", "[^/]+"]


def _promtool_accepts(tmp_path: Path, pattern: str) -> bool:
    escaped = pattern.replace("\\", "\\\\").replace('"', '\\"')
    expr = f'x{{route=~"{escaped}"}} > 1'
    rule = f"groups:\n- name: g\n  rules:\n  - alert: a\n    expr: '{expr}'\n"
    (tmp_path / "rules.yml").write_text(rule)
    status, _ = run("promtool", "check", "rules", str(tmp_path / "rules.yml"))
    return status == 0


@pytest.mark.parametrize("pattern", PYTHON_ONLY + RE2_TOO)
def test_the_re2_check_agrees_with_promtool(tmp_path: Path, pattern: str) -> None:
    need("promtool")
    assert (re2_problem(pattern) is None) == _promtool_accepts(tmp_path, pattern), pattern


def test_a_python_only_regex_is_refused_at_rule_load() -> None:
    with pytest.raises(ConfigError, match=r"not RE2.*use a !~ matcher instead"):
        AlertEngine().add_rule(
            name="no_health",
            metric="request.count",
            matchers=['name=~"(?!/health).*"'],
            threshold=1,
        )
