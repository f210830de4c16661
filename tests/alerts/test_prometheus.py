"""Rules exported as a Prometheus rule file: from declared kinds, checked by the real promtool."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from obskit import anomaly
from obskit.alerts import AlertEngine
from obskit.cli import main
from obskit.diagnostics import ConfigError

from .promstack import need, run

KINDS = {
    "requests": "counter",
    "errors": "counter",
    "latency": "histogram",
    "temp": "gauge",
    "queue.depth": "up_down_counter",
}


def exported(engine: AlertEngine, **options: Any) -> dict[str, Any]:
    export = engine.export_prometheus_rules(kinds=KINDS, **options)
    data: dict[str, Any] = yaml.safe_load(export.text)
    return data


def alert_exprs(engine: AlertEngine) -> dict[str, str]:
    (group,) = exported(engine)["groups"]
    return {r["alert"]: r["expr"] for r in group["rules"] if "alert" in r}


@pytest.mark.parametrize(
    ("metric", "aggregation", "expr"),
    [
        ("requests", "rate", "rate(requests_total[1m]) > 5"),
        ("requests", "sum", "increase(requests_total[1m]) > 5"),
        ("latency", "rate", "rate(latency_sum[1m]) > 5"),  # the sum per second, as obskit's
        ("latency", "count", "increase(latency_count[1m]) > 5"),
        ("latency", "sum", "increase(latency_sum[1m]) > 5"),
        ("latency", "avg", "(rate(latency_sum[1m]) / rate(latency_count[1m])) > 5"),
        ("latency", "p95", "histogram_quantile(0.95, rate(latency_bucket[1m])) > 5"),
        ("temp", "max", "max_over_time(temp[1m]) > 5"),
        ("temp", "last", "last_over_time(temp[1m]) > 5"),
        ("temp", "p99", "quantile_over_time(0.99, temp[1m]) > 5"),
        ("queue.depth", "sum", "delta(queue_depth[1m]) > 5"),
    ],
)
def test_each_aggregation_maps_to_its_promql(
    make_engine: Callable[..., AlertEngine], metric: str, aggregation: str, expr: str
) -> None:
    engine = make_engine()
    engine.add_rule(name="r", metric=metric, aggregation=aggregation, threshold=5)
    assert alert_exprs(engine) == {"r": expr}


def test_the_export_reads_declared_kinds_not_traffic(
    make_engine: Callable[..., AlertEngine],
) -> None:
    engine = make_engine()
    engine.add_rule(name="errors", metric="errors", aggregation="rate", threshold=1)
    engine.add_rule(name="slow", metric="latency", aggregation="p99", threshold=0.8)
    before = engine.export_prometheus_rules(kinds=KINDS).text
    engine.increment("errors", route="/")
    engine.observe("latency", 0.1, route="/")
    assert engine.export_prometheus_rules(kinds=KINDS).text == before
    undeclared = make_engine()
    undeclared.add_rule(name="r", metric="never.declared", threshold=1)
    (skipped,) = undeclared.export_prometheus_rules().skipped
    assert skipped[0] == "rule 'r'" and "not declared" in skipped[1]


def test_ratio_aggregate_by_and_short_window(make_engine: Callable[..., AlertEngine]) -> None:
    engine = make_engine()
    engine.add_rule(
        name="error_ratio",
        metric="errors",
        denominator="requests",
        aggregation="rate",
        window_s="1h",
        short_window_s="5m",
        threshold=0.05,
        aggregate_by=["http.route"],
        matchers={"env": "prod"},
    )
    (group,) = exported(engine)["groups"]
    records = {r["record"]: r["expr"] for r in group["rules"] if "record" in r}
    assert records == {
        "http_route:errors_per_requests:rate_ratio1h": (
            'sum by (http_route) (rate(errors_total{env="prod"}[1h]))\n/\n'
            'sum by (http_route) (rate(requests_total{env="prod"}[1h]))'
        ),
        "http_route:errors_per_requests:rate_ratio5m": (
            'sum by (http_route) (rate(errors_total{env="prod"}[5m]))\n/\n'
            'sum by (http_route) (rate(requests_total{env="prod"}[5m]))'
        ),
    }
    assert alert_exprs(engine)["error_ratio"] == (
        "(http_route:errors_per_requests:rate_ratio1h > 0.05) and "
        "(http_route:errors_per_requests:rate_ratio5m > 0.05)"
    )


def test_percentiles_aggregate_their_buckets_by_le(make_engine: Callable[..., AlertEngine]) -> None:
    engine = make_engine()
    engine.add_rule(
        name="slow", metric="latency", aggregation="p95", threshold=0.5, aggregate_by=["route"]
    )
    assert alert_exprs(engine)["slow"] == (
        "histogram_quantile(0.95, sum by (route, le) (rate(latency_bucket[1m]))) > 0.5"
    )


def test_slo_becomes_recording_rules_and_burn_rate_alerts(
    make_engine: Callable[..., AlertEngine],
) -> None:
    engine = make_engine()
    engine.add_slo(
        name="checkout",
        good="requests",
        total="requests",
        objective=0.999,
        matchers=['code!~"5.."'],
    )
    (group,) = exported(engine)["groups"]
    records = [(r["record"], r.get("labels")) for r in group["rules"] if "record" in r]
    assert [name for name, _ in records] == [
        "slo:sli_error:ratio_rate5m",
        "slo:sli_error:ratio_rate30m",
        "slo:sli_error:ratio_rate1h",
        "slo:sli_error:ratio_rate6h",
        "slo:sli_error:ratio_rate30d",
        "slo:error_budget_remaining:ratio",
    ]
    assert all(labels == {"slo": "checkout"} for _, labels in records)
    exprs = alert_exprs(engine)
    assert exprs["checkout_burn_rate_page"] == (
        'slo:sli_error:ratio_rate1h{slo="checkout"} > 0.0144\nand\n'
        'slo:sli_error:ratio_rate5m{slo="checkout"} > 0.0144'
    )
    assert exprs["checkout_burn_rate_ticket"].startswith(
        'slo:sli_error:ratio_rate6h{slo="checkout"} > 0.006'
    )


def test_what_has_no_equivalent_is_skipped_with_its_reason_or_refused_when_strict(
    make_engine: Callable[..., AlertEngine],
) -> None:
    engine = make_engine()
    engine.add_rule(name="ok", metric="requests", aggregation="rate", threshold=1)
    engine.add_rule(name="max_of_histogram", metric="latency", aggregation="max", threshold=1)
    engine.add_rule(name="hysteresis", metric="temp", threshold=100, resolve_threshold=80)
    engine.add_rule(name="score", metric="temp", threshold=1, annotations={"s": "{{ score }}"})
    engine.add_rule(name="spike", metric="requests", aggregation="sum", detector=_Detector)
    engine.add_rule(
        name="spike_score", metric="requests", aggregation="sum", threshold=0.9, detector=_Detector
    )
    export = engine.export_prometheus_rules(kinds=KINDS)
    skipped = dict(export.skipped)
    assert set(skipped) == {
        "rule 'max_of_histogram'",
        "rule 'hysteresis'",
        "rule 'score'",
        "rule 'spike'",
        "rule 'spike_score'",
    }
    assert "'max' of a histogram has no PromQL equivalent" in skipped["rule 'max_of_histogram'"]
    assert "resolve_threshold" in skipped["rule 'hysteresis'"]
    assert "{{ score }}" in skipped["rule 'score'"]
    assert "without threshold" in skipped["rule 'spike'"]
    assert "anomaly score" in skipped["rule 'spike_score'"]
    assert list(alert_exprs(engine)) == ["ok"]  # the rest of the file is still written
    with pytest.raises(ConfigError, match=r"5 item\(s\) have no equivalent"):
        engine.export_prometheus_rules(kinds=KINDS, strict=True)


def test_a_detector_rule_reads_the_published_anomaly_score(
    make_engine: Callable[..., AlertEngine],
) -> None:
    engine = make_engine()
    engine.add_rule(
        name="spike",
        metric="requests",
        aggregation="sum",
        threshold=0.9,
        detector=_Detector,
        annotations={"summary": "score {{ score }}"},
    )
    watch = anomaly.watch("requests", publish_score=True)  # declares the score's gauge
    try:
        export = engine.export_prometheus_rules(kinds=KINDS)
    finally:
        watch.stop()
    (group,) = yaml.safe_load(export.text)["groups"]
    (rule,) = group["rules"]
    assert rule["expr"] == "requests_anomaly_score > 0.9"  # not increase(requests_total) > 0.9
    assert rule["annotations"] == {"summary": "score {{ $value }}"}
    observed = engine.export_prometheus_rules(
        kinds={**KINDS, "requests.anomaly_score": "histogram"}
    )
    (skipped,) = observed.skipped
    assert "is a histogram" in skipped[1]


def test_label_names_are_sanitised_and_promtool_accepts_the_file(
    make_engine: Callable[..., AlertEngine], tmp_path: Path
) -> None:
    engine = make_engine(evaluation_interval_s=15)
    engine.add_rule(
        name="team_alert",
        metric="requests",
        aggregation="rate",
        threshold=1,
        labels={"team.name": "web"},
        matchers={"http.route": "/cart"},
        annotations={"summary": "{{ labels.http.route }} at {{ value }}"},
    )
    engine.add_rule(
        name="ratio",
        metric="errors",
        denominator="requests",
        aggregation="rate",
        threshold=0.1,
        aggregate_by=[],
        short_window_s=30,
    )
    engine.add_rule(
        name="p99",
        metric="latency",
        aggregation="p99",
        threshold=1,
        aggregate_by=["http.route"],
        for_s="2m",
        keep_firing_for_s="1m",
    )
    engine.add_slo(name="checkout", good="requests", total="requests", objective=0.99)
    engine.stop()
    path = engine.export_prometheus_rules(kinds=KINDS).write(tmp_path / "rules.yml")
    (group,) = yaml.safe_load(path.read_text())["groups"]
    team = next(r for r in group["rules"] if r.get("alert") == "team_alert")
    assert team["expr"] == 'rate(requests_total{http_route="/cart"}[1m]) > 1'
    assert team["labels"] == {"team_name": "web", "severity": "warning"}
    assert team["annotations"]["summary"] == "{{ $labels.http_route }} at {{ $value }}"
    status, output = run("promtool", "check", "rules", str(path))
    assert status == 0, output


def test_the_cli_writes_the_rule_file_and_reports_what_it_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    need("promtool")
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - {name: busy, metric: cli.requests, aggregation: rate, threshold: 5,\n"
        "     channels: [pager]}\n"
        "  - {name: hot, metric: cli.temp, threshold: 100, resolve_threshold: 90}\n"
    )
    (tmp_path / "cli_app_metrics.py").write_text(
        "import obskit.metrics\n"
        "obskit.metrics.counter('cli.requests')\n"
        "obskit.metrics.gauge('cli.temp', unit='Cel')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "prometheus-rules.yml"
    command = ["export", "prometheus-rules", str(rules), "--import", "cli_app_metrics"]
    assert main([*command, "-o", str(out)]) == 0
    assert run("promtool", "check", "rules", str(out))[0] == 0
    (group,) = yaml.safe_load(out.read_text())["groups"]
    assert [r["expr"] for r in group["rules"]] == ["rate(cli_requests_total[1m]) > 5"]
    assert "skipped rule 'hot'" in capsys.readouterr().err
    assert main([*command, "--strict"]) == 1
    assert "resolve_threshold" in capsys.readouterr().err
    assert main(["export", "prometheus-rules", str(rules), "--import", "no_such_module"]) == 1


class _Detector:
    def update(self, value: float, timestamp: float | None = None) -> Any:
        return type("Result", (), {"score": 0.0, "is_anomaly": False})()
