"""obskit.metrics: points in, bad values counted and skipped, series bounded, points out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import obskit
import obskit.alerts
from obskit import diagnostics, metrics
from obskit.alerts import AlertEngine
from obskit.exporters import InMemoryExporter

from .conftest import Clock


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "12", None, object()])
def test_bad_values_are_counted_and_skipped_never_raised(bad: Any) -> None:
    engine = obskit.alerts.default_engine()
    metrics.observe("latency_ms", bad, route="/")
    metrics.increment("orders", bad)
    assert diagnostics.problem_counts()["metrics.bad_value"] == 2
    assert engine.store.stats()["series"] == 0


def test_a_negative_counter_increment_is_refused() -> None:
    engine = obskit.alerts.default_engine()
    metrics.increment("orders", -1)
    engine.increment("orders", -1)
    assert diagnostics.problem_counts()["metrics.bad_value"] == 2
    assert engine.store.stats()["series"] == 0


def test_numbers_of_other_types_are_accepted() -> None:
    from decimal import Decimal

    engine = obskit.alerts.default_engine()
    metrics.observe("x", Decimal("1.5"))
    metrics.observe("x", True)
    assert engine.store.metrics["x"].series[0].total == 2.5


def test_label_order_and_value_types_do_not_split_a_series() -> None:
    engine = obskit.alerts.default_engine()
    metrics.increment("hits", route="/a", code=200)
    metrics.increment("hits", code="200", route="/a")
    (series,) = engine.store.metrics["hits"].series
    assert series.labels == {"code": "200", "route": "/a"} and series.total == 2


def test_a_label_may_be_called_name() -> None:
    engine = obskit.alerts.default_engine()
    metrics.observe("request.duration_ms", 5.0, name="GET /")
    assert engine.store.metrics["request.duration_ms"].series[0].labels == {"name": "GET /"}


def test_the_cardinality_guard_drops_and_counts_new_label_sets(
    make_engine: Callable[..., AlertEngine],
) -> None:
    engine = make_engine(max_series_per_metric=3)
    for user in range(10):
        engine.increment("logins", user=str(user))
    assert engine.store.stats()["series"] == 3
    assert engine.store.stats()["dropped_series"] == {"logins": 7}
    assert diagnostics.problem_counts()["alerts.cardinality.logins"] == 7
    engine.increment("logins", user="1")  # existing series still count
    assert engine.store.metrics["logins"].series[1].total == 2


def test_builtin_series_feed_rules_with_no_extra_code(memory: InMemoryExporter) -> None:
    engine = obskit.alerts.default_engine()
    log = obskit.get_logger("shop")
    with obskit.request("GET /cart"):
        log.warning("cart is slow")
    with pytest.raises(KeyError), obskit.request("GET /cart"):
        raise KeyError("gone")

    @obskit.instrument
    def charge() -> None: ...

    charge()
    names = {name: m.series[0].total for name, m in engine.store.metrics.items()}
    assert names["request.count"] == 2
    assert names["request.errors"] == 1
    assert names["function.duration_ms"] >= 0
    levels = {s.labels["level"]: s.total for s in engine.store.metrics["log.records"].series}
    assert levels["warning"] == 1


def test_log_records_are_counted_only_while_a_sink_listens() -> None:
    from obskit.logging import record_listeners

    obskit.alerts.default_engine()
    assert metrics._count_log_record in record_listeners
    obskit.alerts.reset()
    assert metrics._count_log_record not in record_listeners


def test_series_are_exported_as_metric_points(
    make_engine: Callable[..., AlertEngine], clock: Clock, memory: InMemoryExporter
) -> None:
    engine = make_engine(export_interval_s=60)
    engine.increment("orders", 2, shop="eu")
    engine.observe("latency_ms", 12.0, route="/")
    engine.observe("latency_ms", 30.0, route="/")
    engine.evaluate()  # the first evaluation schedules the export
    engine.evaluate(clock.advance(60))
    obskit.flush()
    points = {(p.name, p.metric_type, p.value) for p in memory.of_kind("metric")}
    assert points == {("orders", "counter", 2.0), ("latency_ms", "gauge", 30.0)}


def test_idle_series_expire_but_not_before_the_longest_window(
    make_engine: Callable[..., AlertEngine], clock: Clock
) -> None:
    engine = make_engine(series_ttl_s=600)
    engine.add_rule(name="r", metric="kept", window_s=3600, threshold=1)
    engine.increment("orders", shop="eu")
    engine.increment("kept", shop="eu")
    engine.evaluate(clock.advance(599))
    assert engine.store.stats()["series"] == 2
    engine.evaluate(clock.advance(62))  # idle series are looked for once a minute at most
    assert [m.name for m in engine.store.metrics.values() if m.series] == ["kept"]


def test_open_telemetry_sink_feeds_otel_instruments() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    sink = metrics.OpenTelemetrySink(MeterProvider(metric_readers=[reader]).get_meter("test"))
    metrics.add_sink(sink)
    try:
        metrics.increment("orders", 3, shop="eu")
        metrics.observe("latency_ms", 12.5, route="/", attempt=object())
    finally:
        metrics.remove_sink(sink)
    data = reader.get_metrics_data()
    found = {
        m.name: m.data.data_points[0]
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert found["orders"].value == 3 and dict(found["orders"].attributes) == {"shop": "eu"}
    assert found["latency_ms"].sum == 12.5 and found["latency_ms"].count == 1
