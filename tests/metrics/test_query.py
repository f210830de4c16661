"""query() and snapshot(): PromQL's answers on the in-process store."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import obskit
from obskit import metrics
from obskit.metrics import histogram_quantile
from obskit.metrics.reader import PeriodicReader


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_sums_and_rates_over_a_window_come_from_the_collection_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(metrics.STORE, "clock", clock)
    reader = PeriodicReader(metrics.STORE, lambda point: None, clock=clock)
    orders = metrics.counter("q.orders")
    orders.add(5, shop="eu")
    orders.add(1, shop="us")
    reader.collect_once()  # t=1000
    clock.now = 1060
    orders.add(3, shop="eu")
    reader.collect_once()  # t=1060
    clock.now = 1090
    orders.add(12, shop="eu")
    assert metrics.query("q.orders", "sum") == 21
    assert metrics.query("q.orders", "sum", shop="eu") == 20
    assert metrics.query("q.orders", "sum", window_s=30, shop="eu") == 12  # since t=1060
    assert metrics.query("q.orders", "rate", window_s=60) == 15 / 60  # since t=1000
    assert metrics.query("q.orders", "count") == 2  # series
    assert metrics.query("q.orders", "sum", shop="asia") is None


def test_percentiles_come_from_the_buckets_as_histogram_quantile() -> None:
    latency = metrics.histogram("q.latency", unit="s", buckets=[0.1, 0.2, 0.4])
    for value in [0.05] * 50 + [0.15] * 40 + [0.3] * 10:
        latency.record(value, route="/a")
    latency.record(0.35, route="/b")
    assert metrics.query("q.latency", "count") == 101
    assert metrics.query("q.latency", "p50", route="/a") == 0.1
    assert metrics.query("q.latency", "p95", route="/a") == pytest.approx(0.3)
    assert metrics.query("q.latency", "avg", route="/a") == pytest.approx(0.115)
    assert metrics.query("q.latency", "max") == 0.35


def test_an_unknown_aggregation_is_a_config_error() -> None:
    metrics.counter("q.c").add()
    with pytest.raises(obskit.ConfigError, match="aggregation"):
        metrics.query("q.c", "median")
    with pytest.raises(obskit.ConfigError, match="window_s"):
        metrics.query("q.c", "rate")


def test_gauges_aggregate_across_series() -> None:
    depth = metrics.gauge("q.depth")
    depth.set(3, queue="a")
    depth.set(5, queue="b")
    assert metrics.query("q.depth", "sum") == 8
    assert metrics.query("q.depth", "max") == 5
    assert metrics.query("q.depth", "last", queue="a") == 3


@given(
    st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=200),
    st.sampled_from([0.5, 0.9, 0.95, 0.99]),
)
def test_a_bucket_quantile_lies_in_the_bucket_of_the_true_quantile(
    values: list[float], q: float
) -> None:
    bounds = [0.5, 1.0, 2.0, 5.0, 10.0]
    counts = [0] * (len(bounds) + 1)
    for value in values:
        counts[next(i for i, b in enumerate([*bounds, float("inf")]) if value <= b)] += 1
    estimate = histogram_quantile(q, bounds, counts)
    ordered = sorted(values)
    rank = q * len(ordered)
    true = ordered[max(0, int(-(-rank // 1)) - 1)]  # the value at that rank
    index = next(i for i, b in enumerate(bounds) if true <= b)
    lower = bounds[index - 1] if index else 0.0
    assert estimate is not None and lower <= estimate <= bounds[index]
