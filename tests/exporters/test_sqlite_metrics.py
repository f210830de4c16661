"""The SQLite store's metric rollups: per-minute increases, histogram buckets, quantiles."""

from __future__ import annotations

from pathlib import Path

from obskit import store
from obskit.exporters import SQLiteExporter
from obskit.signals import MetricPoint

MINUTE = 1_700_000_040.0  # a whole minute
START = MINUTE - 30
BOUNDS = [0.1, 0.5, 1.0]


def counter(at: float, total: float, start: float = START, **labels: str) -> MetricPoint:
    return MetricPoint(timestamp=at, name="orders", value=total, labels=labels,
                       metric_type="counter", start_timestamp=start)  # fmt: skip


def histogram(at: float, counts: list[int], total: float, start: float = START) -> MetricPoint:
    return MetricPoint(timestamp=at, name="latency", value=total, metric_type="histogram",
                       unit="s", start_timestamp=start, count=sum(counts), bounds=BOUNDS,
                       bucket_counts=counts, min=0.05, max=2.0)  # fmt: skip


def test_cumulative_counters_become_increases_per_minute(tmp_path: Path) -> None:
    exporter = SQLiteExporter(tmp_path / "m.db", max_age_s=None)
    exporter.export([counter(MINUTE + 10, 5, shop="eu"), counter(MINUTE + 50, 8, shop="eu")])
    exporter.export([counter(MINUTE + 70, 20, shop="eu")])
    exporter.shutdown()
    with store.open(tmp_path / "m.db") as db:
        assert db.timeseries("orders") == [(MINUTE, 8.0), (MINUTE + 60, 12.0)]
        (newest, _) = db.metrics(name="orders")
        assert (newest.sum, newest.last) == (12.0, 20.0)


def test_a_restarted_exporter_counts_nothing_twice(tmp_path: Path) -> None:
    first = SQLiteExporter(tmp_path / "m.db", max_age_s=None)
    first.export([counter(MINUTE + 10, 5)])
    first.shutdown()
    # the cursor is in the file, not the object
    second = SQLiteExporter(tmp_path / "m.db", max_age_s=None)
    second.export([counter(MINUTE + 20, 7), counter(MINUTE + 25, 6)])  # a late point: skipped
    second.export([counter(MINUTE + 30, 1, start=MINUTE + 28)])  # a new process: from 0
    second.shutdown()
    with store.open(tmp_path / "m.db") as db:
        assert db.timeseries("orders") == [(MINUTE, 8.0)]


def test_histogram_buckets_add_up_over_any_range_and_give_quantiles(tmp_path: Path) -> None:
    exporter = SQLiteExporter(tmp_path / "m.db", max_age_s=None)
    exporter.export([histogram(MINUTE + 5, [10, 0, 0, 0], 0.5)])
    exporter.export([histogram(MINUTE + 65, [10, 80, 10, 0], 40.0)])
    exporter.export([histogram(MINUTE + 125, [10, 80, 10, 100], 340.0)])
    exporter.shutdown()
    with store.open(tmp_path / "m.db") as db:
        first = db.histogram("latency", until=MINUTE + 60)
        assert (first.count, first.buckets) == (10, [(0.1, 10), (0.5, 0), (1.0, 0)])
        assert first.quantile(0.5) == 0.05
        second = db.histogram("latency", since=MINUTE + 60, until=MINUTE + 120)
        assert second.count == 90 and second.sum == 39.5
        assert dict(second.buckets) == {0.1: 0, 0.5: 80, 1.0: 10}
        everything = db.histogram("latency")
        assert everything.count == 200
        assert db.quantile("latency", 0.95) == 1.0  # the +Inf bucket: the highest bound
        assert db.quantile("latency", 0.25) == 0.1 + 0.4 * (50 - 10) / 80
        assert [round(v or 0, 3) for _, v in db.timeseries("latency", "p50")] == [0.05, 0.325, 1.0]
        assert db.metric_names() == [("latency", "histogram", "s")]


def test_a_minute_min_and_max_are_exact_when_new_else_from_buckets(tmp_path: Path) -> None:
    exporter = SQLiteExporter(tmp_path / "m.db", max_age_s=None)
    exporter.export([histogram(MINUTE + 5, [1, 0, 0, 1], 2.05)])
    later = histogram(MINUTE + 65, [1, 3, 0, 1], 3.0)
    exporter.export([later])
    exporter.shutdown()
    with store.open(tmp_path / "m.db") as db:
        by_minute = {r.minute: r for r in db.metrics(name="latency")}
    assert (by_minute[MINUTE].min, by_minute[MINUTE].max) == (0.05, 2.0)
    assert (by_minute[MINUTE + 60].min, by_minute[MINUTE + 60].max) == (0.1, 0.5)


def test_the_points_of_several_processes_add_up(tmp_path: Path) -> None:
    exporter = SQLiteExporter(tmp_path / "m.db", max_age_s=None)
    exporter.export([counter(MINUTE + 1, 3, start=START), counter(MINUTE + 2, 4, start=START + 1)])
    exporter.shutdown()
    with store.open(tmp_path / "m.db") as db:
        assert db.timeseries("orders") == [(MINUTE, 7.0)]
