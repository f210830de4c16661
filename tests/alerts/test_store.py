"""The alert engine's series store: one series per label set, bounded, expiring."""

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


def test_the_engine_exports_no_metric_points_the_store_does(
    make_engine: Callable[..., AlertEngine], clock: Clock, memory: InMemoryExporter
) -> None:
    engine = make_engine()
    engine.add_rule(name="r", metric="orders", aggregation="sum", window_s=60, threshold=100)
    metrics.increment("orders", 2, shop="eu")
    engine.evaluate(clock.advance(120))
    obskit.flush()
    assert memory.of_kind("metric") == []  # the engine only keeps windows
    obskit.metrics.collect()
    obskit.flush()
    points = {(p.name, p.metric_type, p.value) for p in memory.of_kind("metric")}
    assert ("orders", "counter", 2.0) in points


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
