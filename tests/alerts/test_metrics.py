"""obskit.metrics as the alert engine hears it: points in, bad values skipped, series bounded."""

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
    metrics.observe("checkout.duration", 5.0, name="GET /")
    assert engine.store.metrics["checkout.duration"].series[0].labels == {"name": "GET /"}


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
    durations = engine.store.metrics["obskit.request.duration"]
    by_labels = {tuple(sorted(s.labels.items())): s.count for s in durations.series}
    assert by_labels == {
        (("name", "GET /cart"),): 1,
        (("error.type", "KeyError"), ("name", "GET /cart")): 1,
    }
    assert engine.store.metrics["obskit.function.duration"].series[0].count == 1
    levels = {s.labels["level"]: s.total for s in engine.store.metrics["obskit.log.records"].series}
    assert levels["warning"] == 1


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
