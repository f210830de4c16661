"""Ratio rules, aggregation across series, multi-window rules and SLO burn-rate alerts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obskit.alerts import SLO, AlertEngine, RuleError
from obskit.alerts.window import Ring, bucket_quantile, read_rings

from .conftest import Clock


def traffic(
    engine: AlertEngine, clock: Clock, seconds: int, per_s: dict[str, tuple[int, int]]
) -> None:
    """Drive requests (and errors) per route every second for ``seconds``."""
    for _ in range(seconds):
        clock.advance(1)
        for route, (requests, errors) in per_s.items():
            engine.increment("requests", requests, route=route, instance="a")
            if errors:
                engine.increment("errors", errors, route=route, instance="a")


def test_a_ratio_rule_divides_over_the_same_window_and_labels(
    make_engine: Callable[..., AlertEngine], clock: Clock
) -> None:
    engine = make_engine()
    engine.add_rule(
        name="error_ratio",
        metric="errors",
        denominator="requests",
        aggregation="rate",
        window_s=60,
        threshold=0.05,
    )
    traffic(engine, clock, 60, {"/cart": (10, 1), "/home": (10, 0)})
    (alert,) = engine.evaluate()
    assert (alert.state, alert.labels["route"], alert.value) == (
        "firing",
        "/cart",
        pytest.approx(0.1),
    )
    traffic(engine, clock, 60, {"/cart": (10, 0), "/home": (10, 0)})
    assert [(a.state, a.value) for a in engine.evaluate()] == [("resolved", 0.0)]


def test_no_traffic_is_no_data_not_a_division_by_zero(
    make_engine: Callable[..., AlertEngine], clock: Clock
) -> None:
    engine = make_engine()
    engine.add_rule(
        name="error_ratio",
        metric="errors",
        denominator="requests",
        aggregation="sum",
        window_s=60,
        threshold=0.05,
        no_data="alerting",
    )
    traffic(engine, clock, 5, {"/cart": (1, 1)})
    clock.advance(120)
    (alert,) = engine.evaluate()
    assert alert.value is None  # 0 / 0: no data, here alerting by the rule's policy


def test_aggregate_by_sums_across_instances_and_keeps_only_those_labels(
    make_engine: Callable[..., AlertEngine], clock: Clock
) -> None:
    engine = make_engine(external_labels={"instance": "", "service": ""})
    engine.add_rule(
        name="busy",
        metric="requests",
        aggregation="rate",
        window_s=60,
        threshold=15,
        aggregate_by=["route"],
    )
    for _ in range(60):
        clock.advance(1)
        for instance in ("a", "b"):
            engine.increment("requests", 10, route="/cart", instance=instance)
            engine.increment("requests", 5, route="/home", instance=instance)
    (alert,) = engine.evaluate()  # /cart: 20/s in all; /home: 10/s
    assert alert.labels == {"route": "/cart", "alertname": "busy", "severity": "warning"}
    assert alert.value == pytest.approx(20, rel=0.05)  # the window slides by 6 s buckets


def test_the_short_window_must_agree_so_the_alert_ends_soon_after_the_problem(
    make_engine: Callable[..., AlertEngine], clock: Clock
) -> None:
    engine = make_engine()
    engine.add_rule(
        name="burn",
        metric="errors",
        denominator="requests",
        aggregation="rate",
        window_s=3600,
        short_window_s=300,
        threshold=0.1,
        aggregate_by=[],
    )
    traffic(engine, clock, 600, {"/": (10, 5)})
    assert [a.state for a in engine.evaluate()] == ["firing"]
    traffic(engine, clock, 360, {"/": (10, 0)})  # the hour still burns; the last 5 min do not
    (resolved,) = engine.evaluate()
    assert resolved.state == "resolved" and resolved.value > 0.1


def test_an_slo_pages_on_a_fast_burn_and_reports_its_budget(
    make_engine: Callable[..., AlertEngine], clock: Clock
) -> None:
    engine = make_engine()
    slo = engine.add_slo(name="checkout", good="ok", total="all", objective=0.999, window_s="1d")
    assert [r.name for r in engine.rules()] == [
        "checkout_burn_rate_page",
        "checkout_burn_rate_ticket",
    ]
    for _ in range(3600):  # an hour at 99.95 % good: within the objective
        clock.advance(1)
        engine.increment("all", 20)
        engine.increment("ok", 19.99)
    assert engine.evaluate() == []
    (status,) = engine.slo_status("checkout")
    assert status["good_ratio"] == pytest.approx(0.9995)
    assert status["error_budget_remaining"] == pytest.approx(0.5)
    for _ in range(600):  # then 10 minutes at 20 % errors: 200x the sustainable rate
        clock.advance(1)
        engine.increment("all", 20)
        engine.increment("ok", 16)
    fired = {a.rule: a for a in engine.evaluate()}
    assert set(fired) == {"checkout_burn_rate_page", "checkout_burn_rate_ticket"}
    page = fired["checkout_burn_rate_page"]
    assert (page.severity, page.labels["slo"], page.state) == ("critical", "checkout", "firing")
    assert page.value < 1 - 14.4 * 0.001
    assert slo.error_budget == pytest.approx(0.001)
    assert engine.slo_status("checkout")[0]["error_budget_remaining"] < 0
    for _ in range(400):  # recovered: the page ends once the last 5 minutes are clean;
        clock.advance(1)  # the ticket's short window (30 min) still holds the bad minutes
        engine.increment("all", 20)
        engine.increment("ok", 20)
    assert [(a.rule, a.state) for a in engine.evaluate()] == [
        ("checkout_burn_rate_page", "resolved")
    ]


def test_slo_mistakes_are_config_errors(make_engine: Callable[..., AlertEngine]) -> None:
    engine = make_engine()
    with pytest.raises(RuleError, match="objective"):
        engine.add_slo(name="x", good="ok", total="all", objective=99.9)
    engine.add_slo(name="x", good="ok", total="all", objective=0.999)
    with pytest.raises(RuleError, match="already exists"):
        engine.add_slo(SLO(name="x", good="ok", total="all", objective=0.99))


def test_rules_refuse_a_short_window_not_shorter() -> None:
    with pytest.raises(RuleError, match="short_window_s"):
        AlertEngine().add_rule(name="r", metric="m", threshold=1, window_s=60, short_window_s=60)


def test_histogram_percentiles_interpolate_in_buckets_like_prometheus() -> None:
    ring = Ring(width=15.0, size=4, bounds=[0.1, 0.25, 0.5, 1.0])
    for value in [0.05] * 50 + [0.2] * 30 + [0.4] * 15 + [0.9] * 4 + [3.0]:
        ring.add(10.0, value)
    # rank 95 of 100 falls in (0.25, 0.5]: 80 below, 15 in it -> 0.25 + 0.25 * 15/15
    assert ring.value("p95", now=10.0) == pytest.approx(0.5)
    assert ring.value("p50", now=10.0) == pytest.approx(0.1)
    assert ring.value("p99", now=10.0) == pytest.approx(1.0)  # rank 99 in (0.5, 1] at its top


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=60),
    st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=60),
    st.sampled_from(["sum", "count", "avg", "min", "max", "last", "rate", "p50", "p95"]),
)
def test_reading_several_series_equals_one_series_holding_all_points(
    first: list[float], second: list[float], aggregation: str
) -> None:
    bounds = [0.5, 1.0, 2.0, 4.0]
    together = Ring(width=10.0, size=6, bounds=bounds)
    parts = [Ring(width=10.0, size=6, bounds=bounds), Ring(width=10.0, size=6, bounds=bounds)]
    for index, value in enumerate(first + second):
        ring = parts[0] if index < len(first) else parts[1]
        ring.add(float(index % 50), value)
        together.add(float(index % 50), value)
    combined = read_rings(aggregation, [(ring, ring.slots(55.0)) for ring in parts])
    expected = together.value(aggregation, now=55.0)
    if aggregation == "last":  # equal timestamps: any of the latest points
        assert combined in set(first + second)
    else:
        assert combined == pytest.approx(expected)


def test_bucket_quantile_edges() -> None:
    assert bucket_quantile(0.5, [1.0], {}) is None
    assert bucket_quantile(0.5, [-1.0, 1.0], {0: 10}) == -1.0


def test_the_module_level_slo_takes_the_name_first() -> None:
    import obskit.alerts

    obskit.alerts.configure(evaluation_interval_s=None)
    made = obskit.alerts.slo("api", good="api.ok", total="api.requests", objective=0.995)
    assert made.name == "api" and [r.name for r in obskit.alerts.rules()] == [
        "api_burn_rate_page",
        "api_burn_rate_ticket",
    ]
    assert obskit.alerts.slo_status("api") == []  # no traffic yet
