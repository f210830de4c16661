"""The alert engine's series store: one series per label set, bounded, expiring, exported."""

from __future__ import annotations

from collections.abc import Callable

import obskit
import obskit.alerts
from obskit import diagnostics, metrics
from obskit.alerts import AlertEngine
from obskit.exporters import InMemoryExporter

from .conftest import Clock


def test_label_order_and_value_types_do_not_split_a_series() -> None:
    engine = obskit.alerts.default_engine()
    metrics.increment("hits", route="/a", code=200)
    metrics.increment("hits", code="200", route="/a")
    (series,) = engine.store.metrics["hits"].series
    assert series.labels == {"code": "200", "route": "/a"} and series.total == 2


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
