"""Poison records: one bad value never takes its batch down, in any exporter.

A lone surrogate (what ``surrogateescape`` decoding of file names and the environment makes)
in a value, a key, a message or exception text used to fail the whole batch's UTF-8 encoding.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from otlp_receiver import Receiver

import obskit
from obskit import store
from obskit.exporters import InMemoryExporter, JsonLinesExporter, OTLPExporter, SQLiteExporter
from obskit.exporting import ExportResult
from obskit.processor import BatchProcessor
from obskit.signals import LogRecord, Signal

BAD = "\udc80"  # os.fsdecode(b"\x80")


def log_poison_everywhere(count: int) -> None:
    """``count`` records, each with a lone surrogate in a value, a key, the message, the
    exception text and the logger name."""
    log = obskit.get_logger(f"files{BAD}")
    for n in range(count):
        try:
            raise OSError(f"cannot open /data/{BAD}{n}")
        except OSError:
            log.exception(f"message {BAD} {n}", n=n, path=f"/tmp/{BAD}", **{f"key{BAD}": n})


def test_lone_surrogates_keep_every_record_in_json_lines_and_sqlite(tmp_path: Path) -> None:
    jsonl, db = tmp_path / "out.jsonl", tmp_path / "out.db"
    obskit.init(exporters=[JsonLinesExporter(jsonl), SQLiteExporter(db)], install_hooks=False)
    log_poison_everywhere(200)
    assert obskit.flush(timeout_s=20)
    lines = [json.loads(line) for line in jsonl.read_text("utf-8").splitlines()]
    assert sorted(line["n"] for line in lines) == list(range(200))
    assert lines[0]["event"].startswith("message \ufffd") and "\ufffd" in lines[0]["exception"]
    assert lines[0]["logger"] == "files\ufffd" and "key\ufffd" in lines[0]
    with store.open(db) as database:
        stored = database.logs(limit=1000)
    assert sorted(r.fields["n"] for r in stored) == list(range(200))
    stats = obskit.pipeline_stats()["exporters"]
    assert all(s["failed"] == 0 and s["exported"] == 200 for s in stats.values())


def test_lone_surrogates_keep_every_record_over_otlp(receiver: Receiver) -> None:
    exporter = OTLPExporter(receiver.endpoint, protocol=receiver.protocol)
    obskit.init(exporters=[exporter], install_hooks=False)
    log_poison_everywhere(200)
    assert obskit.flush(timeout_s=20)
    assert receiver.received.wait_for(lambda r: len(r.logs) == 200)
    record = receiver.received.log_records()[0]
    assert record.body.string_value.startswith("message \ufffd")


class PickyExporter(InMemoryExporter):
    """Raises on a whole batch when one record in it is marked, as a strict encoder does."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.lock = threading.Lock()

    def export(self, batch: Sequence[Signal]) -> ExportResult:
        with self.lock:
            self.calls += 1
        if any(s.fields.get("poison") for s in batch):
            raise ValueError("cannot encode one record")
        return super().export(batch)


def records(count: int, poisoned: set[int]) -> list[LogRecord]:
    return [
        LogRecord(
            timestamp=1.0, level="info", event=f"r{n}", fields={"n": n, "poison": n in poisoned}
        )
        for n in range(count)
    ]


def test_an_exporter_failing_on_one_record_loses_exactly_that_record() -> None:
    exporter = PickyExporter()
    processor = BatchProcessor(exporter, max_batch_size=512, schedule_delay_s=0.01)
    for record in records(512, {137}):
        processor.enqueue(record)
    assert processor.force_flush(timeout_s=10)
    processor.shutdown(timeout_s=5)
    kept = sorted(r.fields["n"] for r in exporter.records)
    assert kept == [n for n in range(512) if n != 137]
    stats = processor.stats()
    assert (stats.exported, stats.failed, stats.dropped) == (511, 1, 0)
    assert exporter.calls <= 2 * 10 + 1  # halving: about two calls per level, not 512


def test_a_backend_refusing_everything_is_not_asked_once_per_record() -> None:
    class Refusing(InMemoryExporter):
        calls = 0

        def export(self, batch: Sequence[Signal]) -> ExportResult:
            Refusing.calls += 1
            return ExportResult.FAILURE

    processor = BatchProcessor(Refusing(), max_batch_size=512, schedule_delay_s=0.01)
    for record in records(512, set()):
        processor.enqueue(record)
    processor.force_flush(timeout_s=10)
    processor.shutdown(timeout_s=5)
    assert processor.stats().failed == 512
    assert Refusing.calls <= 2 * BatchProcessor.max_splits + 1


@pytest.mark.parametrize("name", ["event", "level", "timestamp", "logger", "method_name", "self"])
def test_reserved_keyword_names_never_raise_and_are_kept_renamed(
    name: str, memory: InMemoryExporter
) -> None:
    payload: dict[str, Any] = {"id": 7}
    log = obskit.get_logger("hooks")
    log.info("webhook", **{name: payload})
    log.warning("webhook %s", "x", **{name: payload})
    log.log("error", "webhook", **{name: payload})
    log.business("paid", **{name: payload})
    obskit.flush()
    for record in memory.logs:
        line = record.to_dict()
        assert line[f"field_{name}"] == payload
        assert line["logger"] == "hooks" and line["event"].startswith(("webhook", "paid"))
    assert len(memory.logs) == 4
