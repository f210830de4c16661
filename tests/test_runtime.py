"""One setup at a time: one Resource per init, handed to every part; shutdown within its budget."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry import trace

import obskit
from obskit import _runtime
from obskit.exporters import InMemoryExporter
from obskit.exporting import ExportResult


class ResourceAware(InMemoryExporter):
    """An in-memory exporter that keeps each Resource the pipeline hands it."""

    def __init__(self) -> None:
        super().__init__()
        self.resources: list[Any] = []

    def set_resource(self, resource: Any) -> None:
        self.resources.append(resource)


def test_a_second_init_changes_the_service_everywhere_spans_included() -> None:
    exporter = ResourceAware()
    library_tracer = trace.get_tracer("some.library")  # taken once, as libraries do
    obskit.init(service="a", environment="staging", exporters=[exporter])
    with obskit.request("first"):
        obskit.get_logger("t").info("in a")
    with library_tracer.start_as_current_span("library a"):
        pass
    obskit.init(service="b", release="2.0", exporters=[exporter])
    with obskit.request("second"):
        obskit.get_logger("t").info("in b")
        event = obskit.capture_message("boom in b")
    with library_tracer.start_as_current_span("library b") as library_span:
        pass
    obskit.flush()
    spans = {s.name: s for s in exporter.spans}
    assert spans["first"].service == "a" and spans["library a"].service == "a"
    assert spans["second"].service == "b" and spans["library b"].service == "b"
    assert library_span.resource.attributes["service.name"] == "b"  # type: ignore[attr-defined]
    assert library_span.resource.attributes["service.version"] == "2.0"  # type: ignore[attr-defined]
    logs = {r.event: r for r in exporter.logs}
    assert (logs["in a"].service, logs["in a"].environment) == ("a", "staging")
    assert (logs["in b"].service, logs["in b"].environment) == ("b", "development")
    assert event is not None and (event.service, event.release) == ("b", "2.0")
    services = [r.attributes["service.name"] for r in exporter.resources]
    assert services == ["a", "b"]


def test_a_second_init_changes_the_trace_sample_rate() -> None:
    memory = InMemoryExporter()
    obskit.init(exporters=[memory], traces_sample_rate=1.0)
    with obskit.request("sampled"):
        pass
    obskit.init(exporters=[memory], traces_sample_rate=0.0)
    with obskit.request("not sampled"):
        pass
    obskit.flush()
    assert [s.name for s in memory.spans] == ["sampled"]


def test_the_resource_takes_otel_resource_attributes_under_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=payments,service.name=from-env")
    obskit.init(service="checkout", exporters=[InMemoryExporter()])
    runtime = _runtime.current()
    attributes = runtime.resource.attributes
    assert attributes["service.name"] == "checkout"  # init's argument wins
    assert attributes["team"] == "payments"
    assert attributes["service.instance.id"] == _runtime.INSTANCE_ID
    assert runtime.service == "checkout" and runtime.release is None


def test_a_signal_that_names_its_service_keeps_it() -> None:
    from obskit.signals import LogRecord

    memory = InMemoryExporter()
    obskit.init(service="here", exporters=[memory])
    _runtime.emit(LogRecord(timestamp=1.0, level="info", event="relayed", service="elsewhere"))
    obskit.flush()
    assert [(r.event, r.service, r.environment) for r in memory.logs] == [
        ("relayed", "elsewhere", "development")
    ]


class Hanging:
    """An exporter whose export blocks until it is shut down."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, batch: Sequence[Any]) -> ExportResult:
        self.release.wait(30)
        return ExportResult.SUCCESS

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        return False

    def shutdown(self, timeout_s: float = 5.0) -> None:
        self.release.set()


@pytest.fixture
def pipeline_budgets(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The time budget each ``Pipeline.shutdown`` call is given."""
    from obskit.pipeline import Pipeline

    budgets: list[float] = []
    shutdown = Pipeline.shutdown

    def recorded(self: Pipeline, timeout_s: float = 5.0, **options: Any) -> None:
        budgets.append(timeout_s)
        shutdown(self, timeout_s, **options)

    monkeypatch.setattr(Pipeline, "shutdown", recorded)
    return budgets


def test_shutdown_takes_no_longer_than_its_timeout_in_total(pipeline_budgets: list[float]) -> None:
    listener_budgets: list[float] = []

    def slow_listener(budget_s: float) -> None:  # uses all the time it is given
        listener_budgets.append(budget_s)
        time.sleep(budget_s)

    obskit.init(exporters=[Hanging()], schedule_delay_s=0.01)
    obskit.get_logger("t").info("stuck behind a hanging exporter")
    _runtime.shutdown_listeners.add(slow_listener)
    try:
        start = time.monotonic()
        obskit.shutdown(timeout_s=2.0)
        elapsed = time.monotonic() - start
    finally:
        _runtime.shutdown_listeners.remove(slow_listener)
    # listeners get half, the pipeline what is left of the whole (was up to 3 s in total)
    (listener_budget,) = listener_budgets
    pipeline_budget = pipeline_budgets[-1]  # (the last: shutdown's, after any init's)
    assert 0 < listener_budget <= 1.0
    assert pipeline_budget <= 2.0 - listener_budget
    assert elapsed >= 1.0  # the listener used its time; the budgets above bound the total


def test_shutdown_without_a_timeout_uses_the_shutdown_timeout_setting(
    pipeline_budgets: list[float],
) -> None:
    obskit.init(exporters=[Hanging()], schedule_delay_s=0.01, shutdown_timeout_s=0.3)
    obskit.get_logger("t").info("stuck behind a hanging exporter")
    obskit.shutdown()
    assert pipeline_budgets and max(pipeline_budgets) <= 0.3  # not the 5 s default


def test_init_is_silent_and_debug_says_what_it_set_up(capsys: pytest.CaptureFixture[str]) -> None:
    obskit.init(service="quiet", exporters=[InMemoryExporter()])
    assert capsys.readouterr() == ("", "")
    obskit.init(service="chatty", exporters=[InMemoryExporter()], debug=True)
    said = capsys.readouterr().err
    assert "obskit: service 'chatty', exporters InMemoryExporter" in said
    assert "InMemoryExporter (batches up to 512, every 0.2 s)" in said
    assert "chained sys.excepthook" in said


def test_exporter_options_configure_named_exporters_and_refuse_mistakes(tmp_path: Any) -> None:
    path = tmp_path / "app.jsonl"
    obskit.init(exporters=["jsonl"], exporter_options={"jsonl": {"path": str(path)}})
    obskit.get_logger("t").info("to the file")
    obskit.flush()
    assert "to the file" in path.read_text()
    with pytest.raises(obskit.ConfigError, match=r"JsonLinesExporter does not take 'pth'"):
        obskit.init(exporters=["jsonl"], exporter_options={"jsonl": {"pth": "x"}})
    with pytest.raises(obskit.ConfigError, match="add 'sqlite' to exporters"):
        obskit.init(exporters=["jsonl"], exporter_options={"sqlite": {"path": "x.db"}})
    with pytest.raises(obskit.ConfigError, match="unknown exporter 'jsnl'"):
        obskit.init(exporters=["jsnl"])
    with pytest.raises(obskit.ConfigError, match="an exporter class: pass an instance"):
        obskit.init(exporters=[InMemoryExporter])
