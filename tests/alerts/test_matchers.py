"""Label matchers and the policies built on them behave as in Prometheus and Alertmanager."""

from __future__ import annotations

import pytest

from obskit.alerts import InhibitRule, Silence, parse_matchers
from obskit.alerts.matchers import parse_matcher
from obskit.alerts.rules import parse_duration


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
