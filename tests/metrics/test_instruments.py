"""Instruments: declared kinds, values checked, label sets bounded, exemplars kept."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import obskit
from obskit import diagnostics, metrics
from obskit.metrics import Observation


def series_of(name: str) -> dict[tuple[tuple[str, str], ...], Any]:
    data = metrics.snapshot()[name]
    return {tuple(sorted(s.labels.items())): s for s in data.series}


def test_each_kind_keeps_its_own_shape() -> None:
    orders = metrics.counter("t.orders", description="orders placed")
    queue = metrics.up_down_counter("t.queue.items")
    temperature = metrics.gauge("t.temperature", unit="Cel")
    latency = metrics.histogram("t.latency", unit="s", buckets=[0.1, 1.0])
    orders.add(shop="eu")
    orders.add(2, shop="eu")
    queue.add(5)
    queue.add(-3)
    temperature.set(21.5, room="a")
    temperature.set(19.0, room="a")
    for seconds in (0.05, 0.5, 0.7, 3.0):
        latency.record(seconds)
    assert series_of("t.orders")[(("shop", "eu"),)].value == 3
    assert series_of("t.queue.items")[()].value == 2
    assert series_of("t.temperature")[(("room", "a"),)].value == 19.0
    histogram = series_of("t.latency")[()]
    assert (histogram.count, histogram.value, histogram.bucket_counts) == (4, 4.25, (1, 2, 1))
    assert (histogram.min, histogram.max) == (0.05, 3.0)
    kinds = {name: i.kind for name, i in metrics.instruments().items() if name.startswith("t.")}
    assert kinds == {
        "t.orders": "counter",
        "t.queue.items": "up_down_counter",
        "t.temperature": "gauge",
        "t.latency": "histogram",
    }


def test_declaring_again_returns_the_same_instrument() -> None:
    assert metrics.counter("t.same", "1") is metrics.counter("t.same", "1")


def test_declaring_a_name_with_another_kind_or_unit_names_both_places() -> None:
    metrics.counter("t.clash")
    with pytest.raises(obskit.ConfigError) as raised:
        metrics.histogram("t.clash", unit="s")
    message = str(raised.value)
    assert "counter" in message and "histogram" in message
    assert message.count("test_instruments.py:") == 2  # where each declaration is
    with pytest.raises(obskit.ConfigError, match="unit"):
        metrics.counter("t.clash", unit="By")


@pytest.mark.parametrize("name", ["", "1st", "has space", "x" * 300])
def test_a_bad_name_is_a_config_error(name: str) -> None:
    with pytest.raises(obskit.ConfigError, match="not valid"):
        metrics.counter(name)


@pytest.mark.parametrize("buckets", [[], [1, 1], [2, 1], [1, float("inf")], ["a"]])
def test_bad_buckets_are_a_config_error(buckets: list[Any]) -> None:
    with pytest.raises(obskit.ConfigError, match="buckets"):
        metrics.histogram("t.bad.buckets", buckets=buckets)


def test_default_buckets_follow_the_unit() -> None:
    assert metrics.histogram("t.seconds", unit="s").bounds[:2] == (0.005, 0.01)
    assert metrics.histogram("t.millis", unit="ms").bounds[:2] == (0.0, 5.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "12", None, object()])
def test_bad_values_are_counted_and_skipped_never_raised(bad: Any) -> None:
    metrics.counter("t.c").add(bad)
    metrics.histogram("t.h").record(bad)
    metrics.gauge("t.g").set(bad)
    metrics.up_down_counter("t.u").add(bad)
    assert diagnostics.problem_counts()["metrics.bad_value"] == 4
    assert not {"t.c", "t.h", "t.g", "t.u"} & set(metrics.snapshot())


def test_a_counter_refuses_a_negative_increment() -> None:
    metrics.counter("t.neg").add(-1)
    metrics.increment("t.neg", -2)
    assert diagnostics.problem_counts()["metrics.bad_value"] == 2


def test_label_order_and_value_types_do_not_split_a_series() -> None:
    hits = metrics.counter("t.hits")
    hits.add(route="/a", code=200)
    hits.add(code="200", route="/a")
    assert list(series_of("t.hits")) == [(("code", "200"), ("route", "/a"))]


def test_past_the_cardinality_limit_points_go_to_the_overflow_series() -> None:
    obskit.init(exporters=[], metrics_cardinality_limit=3)
    logins = metrics.counter("t.logins")
    for user in range(10):
        logins.add(user=str(user))
    logins.add(user="1")  # an existing series still counts
    found = series_of("t.logins")
    assert len(found) == 4
    assert found[(("otel.metric.overflow", "true"),)].value == 7
    assert found[(("user", "1"),)].value == 2
    assert logins.overflowed == 7
    assert diagnostics.problem_counts()["metrics.cardinality.t.logins"] == 7  # reported once


def test_past_the_name_limit_new_names_record_nothing() -> None:
    obskit.init(exporters=[], metrics_max_names=len(metrics.instruments()) + 1)
    metrics.increment("t.first.new")
    metrics.increment("t.second.new")
    assert "t.first.new" in metrics.snapshot() and "t.second.new" not in metrics.snapshot()
    assert diagnostics.problem_counts()["metrics.too_many_metrics"] == 1


def test_the_shortcuts_declare_a_counter_and_a_histogram() -> None:
    metrics.increment("t.short.orders", 2, shop="eu")
    metrics.observe("t.short.latency", 12.5, route="/")
    assert metrics.instruments()["t.short.orders"].kind == "counter"
    assert metrics.instruments()["t.short.latency"].kind == "histogram"
    metrics.gauge("t.short.depth")
    metrics.observe("t.short.depth", 4)  # observe on a gauge sets it
    assert series_of("t.short.depth")[()].value == 4
    metrics.increment("t.short.latency")  # the wrong kind: refused, counted
    assert diagnostics.problem_counts()["metrics.bad_value"] == 1


def test_observable_instruments_are_read_at_collection() -> None:
    depth = {"mail": 3, "sms": 1}
    metrics.gauge(
        "t.queue.depth",
        callback=lambda: [Observation(n, {"queue": q}) for q, n in depth.items()],
    )
    metrics.counter("t.uptime.ticks", callback=lambda: 42)
    assert series_of("t.queue.depth")[(("queue", "mail"),)].value == 3
    depth["mail"] = 8
    assert series_of("t.queue.depth")[(("queue", "mail"),)].value == 8
    assert series_of("t.uptime.ticks")[()].value == 42


def test_a_failing_callback_is_counted_and_leaves_the_rest() -> None:
    metrics.gauge("t.broken", callback=lambda: 1 / 0)
    metrics.counter("t.fine").add()
    assert "t.fine" in metrics.snapshot() and "t.broken" not in metrics.snapshot()
    assert diagnostics.problem_counts()["metrics.callback.t.broken"] >= 1


def test_a_sample_inside_a_sampled_span_is_its_buckets_exemplar() -> None:
    obskit.init(exporters=[])
    latency = metrics.histogram("t.exemplar", unit="s", buckets=[0.1, 1.0])
    with obskit.request("GET /x") as request:
        latency.record(0.5)
    latency.record(0.05)  # outside a trace: no exemplar
    (data,) = metrics.snapshot()["t.exemplar"].series
    assert data.exemplars[0] is None and data.exemplars[2] is None
    exemplar = data.exemplars[1]
    assert exemplar is not None
    assert exemplar.trace_id == request.trace_id and exemplar.value == 0.5


@given(st.lists(st.floats(-1e6, 1e6), max_size=50))
def test_bucket_counts_add_up_to_the_count(values: list[float]) -> None:
    metrics.STORE.reset()
    latency = metrics.histogram("t.property", buckets=[-10.0, 0.0, 10.0, 1000.0])
    for value in values:
        latency.record(value)
    if not values:
        assert "t.property" not in metrics.snapshot()
        return
    (data,) = metrics.snapshot()["t.property"].series
    assert sum(data.bucket_counts) == data.count == len(values)
    assert data.min == min(values) and data.max == max(values)
    for value in values:  # each value counted in the first bucket whose bound is >= it
        index = next((i for i, b in enumerate((-10.0, 0.0, 10.0, 1000.0)) if value <= b), 4)
        assert data.bucket_counts[index] >= 1
