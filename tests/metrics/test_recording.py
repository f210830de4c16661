"""obskit.metrics: what a recording call accepts, refuses and feeds (no alert engine needed)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import obskit
from obskit import diagnostics, metrics
from obskit.exporters import InMemoryExporter
from obskit.logging import record_listeners

from ..conftest import RecordingSink


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
    metrics.observe("checkout.duration", 5.0, name="GET /")
    assert sink.points == [("observe", "checkout.duration", 5.0, {"name": "GET /"})]


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
    assert counted["obskit.errors"] == 1
    requests = [p[3] for p in sink.points if p[1] == "obskit.request.duration"]
    assert requests == [{"name": "GET /cart"}, {"name": "GET /cart", "error.type": "KeyError"}]
    durations = [p for p in sink.points if p[1] == "obskit.function.duration"]
    assert len(durations) == 1 and durations[0][2] > 0
    levels = [p[3]["level"] for p in sink.points if p[1] == "obskit.log.records"]
    assert levels.count("warning") == 1


def test_log_records_are_counted_once_obskit_is_set_up() -> None:
    obskit.init(exporters=[])
    assert metrics._count_log_record in record_listeners
    obskit.get_logger("shop").error("out of stock")
    obskit.get_logger("shop").error("out of stock")
    (errors,) = [s for s in metrics.snapshot()["obskit.log.records"].series]
    assert (errors.labels, errors.value) == ({"level": "error"}, 2)
