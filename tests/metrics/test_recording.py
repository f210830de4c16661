"""obskit.metrics: what a recording call accepts, refuses and feeds (no alert engine needed)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

import obskit
from obskit import diagnostics, metrics
from obskit.exporters import InMemoryExporter
from obskit.logging import record_listeners


class RecordingSink:
    """Keeps every point it is handed."""

    def __init__(self) -> None:
        self.points: list[tuple[str, str, float, dict[str, Any]]] = []

    def observe(
        self, name: str, value: float, labels: dict[str, Any], timestamp: float | None
    ) -> None:
        self.points.append(("observe", name, value, labels))

    def increment(
        self, name: str, amount: float, labels: dict[str, Any], timestamp: float | None
    ) -> None:
        self.points.append(("increment", name, amount, labels))


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    recording = RecordingSink()
    metrics.add_sink(recording)
    yield recording
    metrics.remove_sink(recording)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "12", None, object()])
def test_bad_values_are_counted_and_skipped_never_raised(sink: RecordingSink, bad: Any) -> None:
    metrics.observe("latency_ms", bad, route="/")
    metrics.increment("orders", bad)
    assert diagnostics.problem_counts()["metrics.bad_value"] == 2
    assert sink.points == []


def test_a_negative_counter_increment_is_refused(sink: RecordingSink) -> None:
    metrics.increment("orders", -1)
    assert diagnostics.problem_counts()["metrics.bad_value"] == 1
    assert sink.points == []


def test_numbers_of_other_types_are_accepted(sink: RecordingSink) -> None:
    metrics.observe("x", Decimal("1.5"))
    metrics.observe("x", True)
    assert [(p[1], p[2]) for p in sink.points] == [("x", 1.5), ("x", 1.0)]


def test_a_label_may_be_called_name(sink: RecordingSink) -> None:
    metrics.observe("request.duration_ms", 5.0, name="GET /")
    assert sink.points == [("observe", "request.duration_ms", 5.0, {"name": "GET /"})]


def test_builtin_series_come_from_requests_functions_logs_and_errors(
    sink: RecordingSink, memory: InMemoryExporter
) -> None:
    log = obskit.get_logger("shop")
    with obskit.request("GET /cart"):
        log.warning("cart is slow")
    with pytest.raises(KeyError), obskit.request("GET /cart"):
        raise KeyError("gone")

    @obskit.instrument
    def charge() -> None: ...

    charge()
    counted: dict[str, float] = {}
    for kind, name, value, _ in sink.points:
        if kind == "increment":
            counted[name] = counted.get(name, 0) + value
    assert counted["request.count"] == 2 and counted["request.errors"] == 1
    assert counted["errors.count"] == 1
    durations = [p for p in sink.points if p[1] == "function.duration_ms"]
    assert len(durations) == 1 and durations[0][2] > 0
    levels = [p[3]["level"] for p in sink.points if p[1] == "log.records"]
    assert levels.count("warning") == 1


def test_log_records_are_counted_only_while_a_sink_listens() -> None:
    recording = RecordingSink()
    metrics.add_sink(recording)
    assert metrics._count_log_record in record_listeners
    metrics.remove_sink(recording)
    assert metrics._count_log_record not in record_listeners


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
