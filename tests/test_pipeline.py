"""The pipeline under misbehaving exporters: never block, never raise, never lose silently."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence

import pytest

import obskit
from obskit.exporters import InMemoryExporter
from obskit.exporting import ExportResult
from obskit.pipeline import Pipeline
from obskit.processor import BatchProcessor
from obskit.signals import LogRecord, Signal


def record(n: int) -> LogRecord:
    return LogRecord(timestamp=time.time(), level="info", event=f"r{n}", fields={"n": n})


class RaisingExporter(InMemoryExporter):
    def export(self, batch: Sequence[Signal]) -> ExportResult:
        raise ValueError("exporter bug")


class HangingExporter(InMemoryExporter):
    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.release = threading.Event()
        self.returned = 0  # export calls that have come back

    def export(self, batch: Sequence[Signal]) -> ExportResult:
        self.release.wait(self.seconds)
        self.returned += 1
        return super().export(batch)


class FlakyExporter(InMemoryExporter):
    """Answers RETRYABLE a given number of times, then accepts."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    def export(self, batch: Sequence[Signal]) -> ExportResult:
        self.calls += 1
        if self.calls <= self.failures:
            return ExportResult.RETRYABLE
        return super().export(batch)


def test_raising_exporter_counts_failures_and_others_still_receive() -> None:
    good = InMemoryExporter()
    obskit.init(exporters=[RaisingExporter(), good])
    log = obskit.get_logger("t")
    for n in range(10):
        log.info("x", n=n)
    obskit.flush(timeout_s=10)
    stats = obskit.pipeline_stats()
    assert len(good.logs) == 10
    assert stats["exporters"]["RaisingExporter"]["failed"] == 10
    assert stats["exporters"]["RaisingExporter"]["accepted"] == 10
    assert any(k.startswith("export_error.RaisingExporter") for k in stats["problems"])


def test_hanging_exporter_never_blocks_and_shutdown_respects_timeout() -> None:
    hanging = HangingExporter(120.0)  # hangs until released, far longer than the test
    obskit.init(exporters=[hanging], max_queue_size=100, max_batch_size=10)
    log = obskit.get_logger("t")
    try:
        for n in range(1000):
            log.info("x", n=n)
        # every call came back while the exporter was still hung: none waited for it
        assert hanging.returned == 0
        stats = obskit.pipeline_stats()["exporters"]["HangingExporter"]
        assert stats["dropped"] > 0  # the queue filled: drops are counted, not silent
        assert stats["accepted"] + stats["dropped"] == 1000
        started = time.monotonic()
        obskit.shutdown(timeout_s=1.0)
        # shutdown gave up at its timeout instead of waiting out the hang
        assert hanging.returned == 0 and time.monotonic() - started < 60
    finally:
        hanging.release.set()


def test_retryable_failures_are_retried_then_delivered() -> None:
    flaky = FlakyExporter(failures=2)
    processor = BatchProcessor(flaky, retry_initial_backoff_s=0.01, schedule_delay_s=0.01)
    for n in range(5):
        processor.enqueue(record(n))
    assert processor.force_flush(timeout_s=10)
    stats = processor.stats()
    assert [r.fields["n"] for r in flaky.records] == [0, 1, 2, 3, 4]
    assert (stats.accepted, stats.exported, stats.retried, stats.failed) == (5, 5, 2, 0)
    processor.shutdown(1)


def test_retries_give_up_after_max_retry_and_count_failed() -> None:
    flaky = FlakyExporter(failures=10**9)
    processor = BatchProcessor(
        flaky, retry_initial_backoff_s=0.01, retry_max_backoff_s=0.02, retry_max_elapsed_s=0.2
    )
    processor.enqueue(record(1))
    processor.force_flush(timeout_s=10)
    assert processor.stats().failed == 1
    processor.shutdown(1)


def test_full_queue_drops_and_counts() -> None:
    hanging = HangingExporter(10.0)
    processor = BatchProcessor(hanging, max_queue_size=5, max_batch_size=1)
    accepted = sum(processor.enqueue(record(n)) for n in range(50))
    stats = processor.stats()
    assert stats.dropped == 50 - accepted
    assert stats.accepted == accepted
    hanging.release.set()
    processor.shutdown(5)
    assert processor.stats().exported == accepted


def test_shutdown_flushes_everything_accepted() -> None:
    memory = InMemoryExporter()
    pipe = Pipeline([memory], schedule_delay_s=60)
    for n in range(2500):
        pipe.emit(record(n))
    pipe.shutdown(timeout_s=10)
    assert [r.fields["n"] for r in memory.records] == list(range(2500))
    assert memory.shut_down


def test_enqueue_after_shutdown_is_counted_not_raised() -> None:
    memory = InMemoryExporter()
    processor = BatchProcessor(memory)
    processor.shutdown(1)
    assert processor.enqueue(record(1)) is False
    assert processor.stats().dropped == 1


def test_pipeline_scrubs_before_exporters_see_the_signal() -> None:
    memory = InMemoryExporter()
    pipe = Pipeline([memory])
    pipe.emit(
        LogRecord(timestamp=0, level="info", event="Bearer abcdefghijkl", fields={"api_key": "k"})
    )
    pipe.shutdown(5)
    (seen,) = memory.records
    assert "abcdefghijkl" not in seen.event and seen.fields["api_key"] == "[Filtered]"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_gets_a_working_pipeline(tmp_path: object) -> None:
    import json
    from pathlib import Path

    path = Path(str(tmp_path)) / "fork.jsonl"
    obskit.init(exporters=[obskit.exporters.JsonLinesExporter(path)])
    log = obskit.get_logger("fork")
    log.info("parent before fork")
    pid = os.fork()
    if pid == 0:  # child: log and exit through the normal interpreter shutdown path
        try:
            log.info("from child")
            obskit.flush(timeout_s=10)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    log.info("parent after fork")
    obskit.flush(timeout_s=10)
    events = [json.loads(line)["event"] for line in path.read_text().splitlines()]
    assert sorted(events) == ["from child", "parent after fork", "parent before fork"]
