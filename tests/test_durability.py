"""Durability of the BatchProcessor: keep until taken, Retry-After, and the on-disk spool."""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from obskit import _codec
from obskit.exporters import InMemoryExporter
from obskit.exporting import ExportResult
from obskit.processor import BatchProcessor
from obskit.signals import LogRecord, Signal
from obskit.spool import Spool


def record(n: int) -> LogRecord:
    return LogRecord(timestamp=time.time(), level="info", event=f"r{n}", fields={"n": n})


class Backend(InMemoryExporter):
    """A backend that can be taken down (answers RETRYABLE) and brought back."""

    def __init__(self, *, up: bool = True) -> None:
        super().__init__()
        self.up = threading.Event()
        if up:
            self.up.set()
        self.attempts = 0
        self.retry_after_s: float | None = None

    def export(self, batch: Sequence[Signal]) -> ExportResult:
        self.attempts += 1
        if not self.up.is_set():
            return ExportResult.RETRYABLE
        return super().export(batch)

    def numbers(self) -> list[int]:
        return [r.fields["n"] for r in self.records]


def fast(backend: Backend, **options: object) -> BatchProcessor:
    settings: dict[str, object] = {
        "retry_initial_backoff_s": 0.01,
        "retry_max_backoff_s": 0.05,
        "schedule_delay_s": 0.02,
    }
    settings.update(options)
    return BatchProcessor(backend, **settings)  # type: ignore[arg-type]


def test_a_refused_batch_is_kept_until_the_backend_takes_it() -> None:
    backend = Backend(up=False)
    processor = fast(backend)
    for n in range(10):
        processor.enqueue(record(n))
    time.sleep(1.0)  # far longer than any single backoff: nothing is given up
    assert processor.stats().failed == 0 and processor.stats().retried > 5
    backend.up.set()
    assert processor.force_flush(timeout_s=10)
    assert backend.numbers() == list(range(10))
    processor.shutdown(1)


def test_during_an_outage_the_queue_bounds_what_is_kept_and_drops_are_counted() -> None:
    backend = Backend(up=False)
    processor = fast(backend, max_queue_size=100, max_batch_size=10)
    accepted = [n for n in range(500) if processor.enqueue(record(n))]
    stats = processor.stats()
    assert stats.dropped == 500 - len(accepted) > 0
    assert len(accepted) <= 100 + 10  # the queue, plus the batch being retried
    backend.up.set()
    assert processor.force_flush(timeout_s=10)
    assert backend.numbers() == accepted  # every accepted signal, in order, once
    processor.shutdown(1)


def test_the_backend_can_ask_for_a_longer_pause() -> None:
    backend = Backend(up=False)
    backend.retry_after_s = 0.5
    processor = fast(backend)
    processor.enqueue(record(1))
    time.sleep(0.3)
    assert backend.attempts == 1  # still waiting out Retry-After, not retrying every 10 ms
    backend.up.set()
    assert processor.force_flush(timeout_s=5)
    processor.shutdown(1)


def test_an_outage_moves_the_queue_to_the_spool_and_the_next_process_delivers_it(
    tmp_path: Path,
) -> None:
    down = Backend(up=False)
    first = fast(down, spool_dir=tmp_path, max_batch_size=50)
    for n in range(300):
        first.enqueue(record(n))
    deadline = time.monotonic() + 10
    while first.stats().spooled < 300 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert first.stats().spooled == 300 and first.stats().queued == 0
    first.shutdown(timeout_s=0.5)
    assert first.stats().dropped == 0 and first.stats().failed == 0

    up = Backend()
    second = fast(up, spool_dir=tmp_path)  # same exporter name: same spool directory
    assert second.force_flush(timeout_s=10)
    assert up.numbers() == list(range(300))  # all, in order, once
    assert not list((tmp_path / "Backend").glob("*.seg"))
    second.shutdown(1)


def test_shutdown_during_an_outage_spools_what_is_still_queued(tmp_path: Path) -> None:
    down = Backend(up=False)
    processor = fast(down, spool_dir=tmp_path, schedule_delay_s=60)  # the worker sleeps
    for n in range(20):
        processor.enqueue(record(n))
    processor.shutdown(timeout_s=1)
    up = Backend()
    again = fast(up, spool_dir=tmp_path)
    assert again.force_flush(timeout_s=10)
    assert sorted(up.numbers()) == list(range(20))
    again.shutdown(1)


def test_two_spools_on_one_directory_never_claim_the_same_segment(tmp_path: Path) -> None:
    writer = Spool(tmp_path)
    for n in range(20):
        assert writer.write([record(n)])
    a, b = Spool(tmp_path), Spool(tmp_path)
    taken: list[int] = []
    for spool in (a, b) * 10:
        claim = spool.claim()
        assert claim is not None
        taken += [s.fields["n"] for s in claim[1]]
        spool.release(claim[0])
    assert sorted(taken) == list(range(20))
    assert a.claim() is None and not a.pending()


def test_claims_of_a_dead_process_are_released(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.write([record(1)])
    claim = spool.claim()
    assert claim is not None
    dead_pid = 2**22 + 12345  # above the default pid_max: no such process
    orphan = claim[0].with_name(claim[0].name.replace(f".{os.getpid()}-", f".{dead_pid}-"))
    claim[0].rename(orphan)
    assert not spool.pending()
    spool.release_orphans()
    assert spool.pending()


def test_a_full_spool_keeps_signals_in_memory_instead(tmp_path: Path) -> None:
    down = Backend(up=False)
    processor = fast(down, spool_dir=tmp_path, spool_max_bytes=2000, max_batch_size=5)
    for n in range(100):
        processor.enqueue(record(n))
    time.sleep(0.5)
    stats = processor.stats()
    assert 0 < stats.spooled < 100 and stats.queued > 0 and stats.dropped == 0
    down.up.set()
    assert processor.force_flush(timeout_s=10)
    assert sorted(down.numbers()) == list(range(100))
    processor.shutdown(1)


def test_a_segment_sent_to_the_back_is_never_on_disk_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed at any step of a requeue must not leave a copy behind (CI once saw a
    SIGKILL between writing the moved copy and deleting the original deliver it twice)."""
    spool = Spool(tmp_path)
    for n in range(3):
        assert spool.write([record(2 * n), record(2 * n + 1)])

    def on_disk() -> collections.Counter[int]:
        numbers: collections.Counter[int] = collections.Counter()
        for path in tmp_path.iterdir():
            if path.name.endswith((".seg", ".claimed")):
                for line in path.read_text("utf-8").splitlines():
                    numbers[_codec.decode(_codec.loads(line)).fields["n"]] += 1
        return numbers

    snapshots: list[collections.Counter[int]] = []

    def watched(call: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        def step(source: Any, target: Any) -> None:  # the state after every atomic step
            call(source, target)
            snapshots.append(on_disk())

        return step

    monkeypatch.setattr(os, "rename", watched(os.rename))
    monkeypatch.setattr(os, "replace", watched(os.replace))
    claim = spool.claim()
    assert claim is not None and [s.fields["n"] for s in claim[1]] == [0, 1]
    assert spool.requeue(claim[0])  # refused whole: to the back as it is
    claim = spool.claim()
    assert claim is not None and [s.fields["n"] for s in claim[1]] == [2, 3]
    assert spool.requeue(claim[0], [claim[1][1]])  # 2 delivered: 3 goes to the back
    assert snapshots and all(max(seen.values()) == 1 for seen in snapshots)
    order = []
    while (claim := spool.claim()) is not None:
        order += [s.fields["n"] for s in claim[1]]
        spool.release(claim[0])
    assert order == [4, 5, 0, 1, 3]
