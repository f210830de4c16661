"""Rules written as Prometheus alerting rules keep their meaning."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from obskit.alerts import AlertEngine, AlertRule
from obskit.alerts.prometheus import prometheus_rule


def rule(**fields: Any) -> AlertRule:
    defaults: dict[str, Any] = {"name": "r", "metric": "request.duration_ms", "threshold": 500}
    return AlertRule(**{**defaults, **fields})


@pytest.mark.parametrize(
    ("kind", "aggregation", "expr"),
    [
        ("counter", "rate", "rate(request_duration_ms_total[1m]) > 500"),
        ("counter", "sum", "increase(request_duration_ms_total[1m]) > 500"),
        (
            "histogram",
            "p95",
            "histogram_quantile(0.95, rate(request_duration_ms_bucket[1m])) > 500",
        ),
        (
            "histogram",
            "avg",
            "(rate(request_duration_ms_sum[1m]) / rate(request_duration_ms_count[1m])) > 500",
        ),
        ("histogram", "count", "increase(request_duration_ms_count[1m]) > 500"),
        ("gauge", "max", "max_over_time(request_duration_ms[1m]) > 500"),
        ("gauge", "p99", "quantile_over_time(0.99, request_duration_ms[1m]) > 500"),
        ("gauge", "rate", "(sum_over_time(request_duration_ms[1m]) / 60) > 500"),
    ],
)
def test_each_aggregation_maps_to_its_promql(kind: str, aggregation: str, expr: str) -> None:
    assert prometheus_rule(rule(aggregation=aggregation), kind)["expr"] == expr


def test_matchers_durations_and_templates_carry_over() -> None:
    out = prometheus_rule(
        rule(
            aggregation="p95",
            window_s="1h30m",
            for_s=90,
            keep_firing_for_s=0.25,
            matchers=['name=~"GET /.*"', "env!=dev"],
            labels={"team": "shop-{{ labels.env }}"},
            annotations={"summary": "{{ rule }}: {{ value }} > {{ threshold }} ({{ metric }})"},
        ),
        "histogram",
    )
    assert out["expr"] == (
        'histogram_quantile(0.95, rate(request_duration_ms_bucket{name=~"GET /.*",env!="dev"}'
        "[1h30m])) > 500"
    )
    assert (out["for"], out["keep_firing_for"]) == ("1m30s", "250ms")
    assert out["labels"] == {"team": "shop-{{ $labels.env }}", "severity": "warning"}
    assert out["annotations"]["summary"] == (
        "{{ $labels.alertname }}: {{ $value }} > 500 (request.duration_ms)"
    )


def test_what_prometheus_cannot_say_is_refused_or_dropped_openly() -> None:
    hysteresis = rule(resolve_threshold=400, no_data="keep_state")
    with pytest.raises(ValueError, match="resolve_threshold, no_data"):
        prometheus_rule(hysteresis)
    dropped = prometheus_rule(hysteresis, strict=False)
    assert dropped["annotations"]["obskit_dropped"] == "resolve_threshold, no_data"
    with pytest.raises(ValueError, match="field 'aggregation': 'max' of a counter"):
        prometheus_rule(rule(aggregation="max"), "counter")


def test_an_engine_writes_a_rule_file_with_the_kinds_it_has_seen(
    make_engine: Callable[..., AlertEngine],
) -> None:
    engine = make_engine(evaluation_interval_s=15)
    engine.add_rule(name="errors", metric="request.errors", aggregation="rate", threshold=1)
    engine.add_rule(name="slow", metric="request.duration_ms", aggregation="p99", threshold=800)
    engine.increment("request.errors", name="GET /")
    engine.observe("request.duration_ms", 12.0, name="GET /")
    data = yaml.safe_load(engine.export_prometheus_rules().text)
    (group,) = data["groups"]
    assert (group["name"], group["interval"]) == ("obskit", "15s")
    assert [r["expr"] for r in group["rules"]] == [
        "rate(request_errors_total[1m]) > 1",
        "histogram_quantile(0.99, rate(request_duration_ms_bucket[1m])) > 800",
    ]
