"""The runtime's reader: periodic, final at shutdown, cumulative or delta, settings from OTEL_*."""

from __future__ import annotations

import pytest

import obskit
from obskit import metrics
from obskit.exporters import InMemoryExporter
from obskit.metrics.reader import PeriodicReader
from obskit.signals import MetricPoint


def collect(reader: PeriodicReader) -> dict[str, MetricPoint]:
    points: list[MetricPoint] = []
    reader.emit = points.append
    reader.collect_once()
    return {p.name: p for p in points if p.name.startswith("r.")}


def test_init_starts_the_reader_and_shutdown_collects_one_last_time() -> None:
    memory = InMemoryExporter()
    obskit.init(exporters=[memory], metrics_interval_s=0.05, runtime_metrics=False)
    jobs = metrics.counter("r.jobs")
    jobs.add(2)
    assert metrics._reader is not None and metrics._reader.running
    jobs.add(3)
    obskit.shutdown()
    totals = [p.value for p in memory.of_kind("metric") if p.name == "r.jobs"]
    assert totals[-1] == 5  # the last point has everything recorded before shutdown
    assert not metrics._reader.running


def test_cumulative_points_carry_their_start_and_delta_points_the_change() -> None:
    orders = metrics.counter("r.orders")
    latency = metrics.histogram("r.latency", buckets=[1.0])
    reader = PeriodicReader(metrics.STORE, lambda p: None, temporality="cumulative")
    delta = PeriodicReader(metrics.STORE, lambda p: None, temporality="delta")
    orders.add(4)
    latency.record(0.5)
    first, first_delta = collect(reader), collect(delta)
    orders.add(6)
    latency.record(3.0)
    second, second_delta = collect(reader), collect(delta)
    assert [first["r.orders"].value, second["r.orders"].value] == [4, 10]
    assert second["r.orders"].start_timestamp == first["r.orders"].start_timestamp
    assert [first_delta["r.orders"].value, second_delta["r.orders"].value] == [4, 6]
    assert second_delta["r.orders"].temporality == "delta"
    assert second_delta["r.latency"].bucket_counts == [0, 1]
    assert second_delta["r.latency"].count == 1
    assert second_delta["r.orders"].start_timestamp == first_delta["r.orders"].timestamp


def test_up_down_counters_stay_cumulative_under_delta() -> None:
    queue = metrics.up_down_counter("r.queue")
    delta = PeriodicReader(metrics.STORE, lambda p: None, temporality="delta")
    queue.add(5)
    collect(delta)
    queue.add(-2)
    point = collect(delta)["r.queue"]
    assert (point.value, point.temporality) == (3, "cumulative")


def test_the_opentelemetry_variables_set_interval_and_temporality(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "15000")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "DELTA")
    settings = obskit.Settings()
    assert (settings.metrics_interval_s, settings.metrics_temporality) == (15.0, "delta")
    assert obskit.Settings(metrics_interval_s=5).metrics_interval_s == 5


def test_a_bad_interval_is_a_config_error() -> None:
    with pytest.raises(obskit.ConfigError, match="metrics_interval_s"):
        obskit.init(metrics_interval_s=0)


def test_runtime_metrics_are_on_by_default_and_can_be_turned_off() -> None:
    obskit.init(exporters=[])
    names = set(metrics.snapshot())
    assert {"process.cpu.time", "process.memory.usage", "cpython.gc.collections"} <= names
    obskit.init(exporters=[], runtime_metrics=False)
    assert not any(n.startswith(("process.", "cpython.")) for n in metrics.snapshot())


def test_the_pipeline_reports_itself_as_series() -> None:
    from obskit.exporters import InMemoryExporter

    obskit.init(exporters=[InMemoryExporter()], runtime_metrics=False)
    obskit.get_logger("shop").info("one")
    obskit.flush()
    metrics.counter("r.neg").add(-1)  # a problem, counted
    found = metrics.snapshot()
    (exported,) = found["obskit.pipeline.exported"].series
    assert exported.labels == {"exporter": "InMemoryExporter"} and exported.value >= 1
    problems = {s.labels["kind"]: s.value for s in found["obskit.problems"].series}
    assert problems["metrics.bad_value"] == 1
