"""SQLiteExporter: the embedded store. Every kind stored, concurrent writers, retention, faults."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

import obskit
from obskit import ConfigError, store
from obskit.exporters import SQLiteExporter
from obskit.exporting import ExportResult
from obskit.processor import BatchProcessor
from obskit.signals import (
    Alert,
    Anomaly,
    ErrorEvent,
    HealthRecord,
    LogRecord,
    MetricPoint,
    Signal,
    SpanRecord,
)

NOW = float(int(time.time()))  # recent: default retention keeps a week


def log(n: int, *, ts: float = NOW, level: str = "info", logger: str = "shop") -> LogRecord:
    return LogRecord(
        timestamp=ts + n, level=level, event=f"event {n}", logger=logger, fields={"n": n}
    )


def error(fingerprint: str, ts: float, title: str = "KeyError: 'x'") -> ErrorEvent:
    return ErrorEvent(
        event_id=f"e{ts}",
        timestamp=ts,
        level="error",
        fingerprint=fingerprint,
        title=title,
        culprit="shop.cart in load",
        exceptions=[{"type": "KeyError", "value": "'x'", "module": "builtins", "frames": []}],
    )


def test_every_signal_kind_is_stored_and_reads_back_as_the_same_signal(tmp_path: Path) -> None:
    exporter = SQLiteExporter(tmp_path / "all.db")
    span = SpanRecord(
        timestamp=NOW,
        name="GET /",
        trace_id="a" * 32,
        span_id="b" * 16,
        parent_span_id=None,
        duration_ms=12.5,
        attributes={"http.route": "/"},
    )
    health = HealthRecord(timestamp=NOW, status="fail", checks={"db": {"status": "fail"}})
    alert = Alert(timestamp=NOW, rule="high_errors", state="firing", severity="page", value=0.3)
    anomaly = Anomaly(timestamp=NOW, metric="latency", value=900.0, score=7.5, detector="zscore")
    record = LogRecord(
        timestamp=NOW,
        level="warning",
        event="slow",
        logger="shop.db",
        fields={"ms": 900},
        trace_id="a" * 32,
        span_id="b" * 16,
        exception="Traceback ...",
    )
    event = error("fp1", NOW)
    batch = [record, event, span, health, alert, anomaly]
    assert exporter.export(batch) is ExportResult.SUCCESS
    exporter.shutdown()

    with store.open(tmp_path / "all.db") as db:
        assert db.logs() == [record]
        assert db.errors() == [event]
        assert db.spans() == [span]
        assert db.health() == [health]
        assert db.alerts() == [alert]
        assert db.anomalies() == [anomaly]
        (group,) = db.error_groups()
        assert (group.fingerprint, group.count, group.title) == ("fp1", 1, "KeyError: 'x'")


def test_a_captured_event_is_stored_without_obskit_internals(tmp_path: Path) -> None:
    obskit.init(exporters=[SQLiteExporter(tmp_path / "c.db")], install_hooks=False)
    try:
        raise KeyError("x")
    except KeyError:
        event = obskit.capture_exception()
    obskit.shutdown()
    assert event is not None
    with sqlite3.connect(tmp_path / "c.db") as db:
        stored = [row[0] for row in db.execute("SELECT data FROM errors")]
    assert len(stored) == 1 and "scrubbed_by" not in stored[0] and "Scrubber" not in stored[0]
    with store.open(tmp_path / "c.db") as db:
        (read,) = db.errors()
    assert (read.fingerprint, read.title) == (event.fingerprint, event.title)


def test_error_groups_count_events_and_track_first_and_last_seen(tmp_path: Path) -> None:
    exporter = SQLiteExporter(tmp_path / "e.db")
    exporter.export([error("fp1", NOW + 5), error("fp1", NOW + 1), error("fp2", NOW + 2)])
    exporter.export([error("fp1", NOW + 9, title="KeyError: 'y'")])
    exporter.shutdown()
    with store.open(tmp_path / "e.db") as db:
        groups = {g.fingerprint: g for g in db.error_groups(order_by="count")}
        assert [g.fingerprint for g in db.error_groups(order_by="count")] == ["fp1", "fp2"]
        first = groups["fp1"]
        assert (first.count, first.first_seen, first.last_seen) == (3, NOW + 1, NOW + 9)
        assert first.title == "KeyError: 'y'"  # the latest event names the group
        assert len(db.errors(fingerprint="fp1")) == 3


def test_gauge_points_are_rolled_up_per_minute_and_series(tmp_path: Path) -> None:
    exporter = SQLiteExporter(tmp_path / "m.db")
    minute = NOW - NOW % 60
    points = [
        MetricPoint(timestamp=minute + s, name="queue.depth", value=v, labels={"route": "/a"})
        for s, v in ((1, 10.0), (2, 30.0), (61, 5.0))
    ]
    points.append(MetricPoint(timestamp=minute + 3, name="queue.depth", value=1.0, labels={}))
    exporter.export(points[:2])
    exporter.export(points[2:])
    exporter.shutdown()
    with store.open(tmp_path / "m.db") as db:
        rollups = {(r.minute, tuple(r.labels.items())): r for r in db.metrics(name="queue.depth")}
    first = rollups[(minute, (("route", "/a"),))]
    assert (first.points, first.sum, first.min, first.max) == (2, 40.0, 10.0, 30.0)
    assert first.last == 30.0
    assert first.mean == 20.0
    assert rollups[(minute + 60, (("route", "/a"),))].points == 1
    assert rollups[(minute, ())].last == 1.0


def test_log_queries_filter_by_level_logger_text_trace_and_time(tmp_path: Path) -> None:
    exporter = SQLiteExporter(tmp_path / "q.db")
    exporter.export(
        [
            log(0, level="debug"),
            log(1, level="warning", logger="shop.cart"),
            log(2, level="error", logger="shopping"),
            LogRecord(timestamp=NOW + 3, level="info", event="Card DECLINED", trace_id="t" * 32),
        ]
    )
    exporter.shutdown()
    with store.open(tmp_path / "q.db") as db:
        assert [r.fields["n"] for r in db.logs(level="warning")] == [2, 1]  # newest first
        assert [r.logger for r in db.logs(logger="shop")] == ["shop.cart", "shop"]
        assert [r.event for r in db.logs(contains="declined")] == ["Card DECLINED"]
        assert [r.event for r in db.logs(trace_id="t" * 32)] == ["Card DECLINED"]
        assert len(db.logs(since=NOW + 1, until=NOW + 2)) == 2
        assert len(db.logs(limit=1)) == 1
        assert db.level_counts() == {"debug": 1, "info": 1, "warning": 1, "error": 1}


def test_init_by_name_takes_the_path_from_exporter_options(tmp_path: Path) -> None:
    path = tmp_path / "named.db"
    obskit.init(exporters=["sqlite"], exporter_options={"sqlite": {"path": str(path)}})
    obskit.get_logger("t").info("by name")
    obskit.shutdown()
    with store.open(path) as db:
        assert [r.event for r in db.logs()] == ["by name"]


WRITER = """
import sys
import obskit
from obskit.exporters import SQLiteExporter
obskit.init(exporters=[SQLiteExporter({path!r})], shutdown_timeout_s=60)
log = obskit.get_logger("writer")
for n in range({count}):
    log.info("row", proc=int(sys.argv[1]), n=n)
"""


def test_two_processes_writing_one_database_concurrently_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    count = 4000
    script = textwrap.dedent(WRITER.format(path=str(path), count=count))
    writers = [subprocess.Popen([sys.executable, "-c", script, str(p)]) for p in (1, 2)]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    with store.open(path) as db:
        rows = db.logs(limit=10 * count)
    seen = sorted((r.fields["proc"], r.fields["n"]) for r in rows)
    assert seen == [(p, n) for p in (1, 2) for n in range(count)]


def test_retention_deletes_rows_older_than_max_age(tmp_path: Path) -> None:
    now = [NOW]
    exporter = SQLiteExporter(tmp_path / "age.db", max_age_s=3600, clock=lambda: now[0])
    exporter.export([log(0, ts=NOW - 7200), error("old", NOW - 7200)])
    exporter.export([log(1, ts=NOW - 60), error("new", NOW - 60)])
    now[0] += 61  # past the retention interval: the next export prunes
    exporter.export([log(2, ts=now[0])])
    exporter.shutdown()
    with store.open(tmp_path / "age.db") as db:
        assert sorted(r.fields["n"] for r in db.logs()) == [1, 2]
        assert [g.fingerprint for g in db.error_groups()] == ["new"]
        assert len(db.errors()) == 1


def test_retention_by_size_keeps_the_newest_rows_under_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "size.db"
    limit = 256 * 1024
    exporter = SQLiteExporter(path, max_bytes=limit, retention_interval_s=0)
    padding = "x" * 500
    for start in range(0, 4000, 200):
        batch = [log(n) for n in range(start, start + 200)]
        for record in batch:
            record.fields["pad"] = padding
        exporter.export(batch)
    exporter.shutdown()
    with store.open(path) as db:
        kept = sorted(r.fields["n"] for r in db.logs(limit=10_000))
    assert 0 < len(kept) < 4000
    assert kept == list(range(kept[0], 4000))  # what is left is the newest, without holes
    assert path.stat().st_size <= 2 * limit  # pages were handed back (incremental vacuum)


def test_a_locked_database_is_retried_without_blocking_or_losing(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    exporter = SQLiteExporter(path, busy_timeout_s=0.05)
    exporter.export([log(0)])
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    exporting_threads = set()
    export = exporter.export

    def watched(batch: Sequence[Signal]) -> ExportResult:
        exporting_threads.add(threading.get_ident())
        return export(batch)

    exporter.export = watched  # type: ignore[method-assign]
    processor = BatchProcessor(exporter, retry_initial_backoff_s=0.02, retry_max_backoff_s=0.1)
    for n in range(1, 101):
        processor.enqueue(log(n))
    assert not processor.force_flush(timeout_s=0.5)
    deadline = time.monotonic() + 30
    while processor.stats().retried == 0:
        assert time.monotonic() < deadline, "the locked database was never retried"
        time.sleep(0.01)
    # the app side never waits for the lock: only the worker thread touches the database
    assert threading.get_ident() not in exporting_threads
    holder.execute("ROLLBACK")
    holder.close()
    assert processor.force_flush(timeout_s=10)
    processor.shutdown(5)
    assert processor.stats().failed == 0
    with store.open(path) as db:
        assert len(db.logs(limit=1000)) == 101
    assert "sqlite.locked" in obskit.pipeline_stats()["problems"]


def test_a_full_disk_is_retried_until_space_comes_back(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    exporter = SQLiteExporter(path, max_bytes=None)
    exporter.export([log(0)])
    conn = exporter._connection()
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk full"
    big = [log(n) for n in range(1, 500)]
    assert exporter.export(big) is ExportResult.RETRYABLE
    assert "sqlite.disk_full" in obskit.pipeline_stats()["problems"]
    assert exporter.export(big) is ExportResult.SUCCESS  # a fresh connection has no limit
    exporter.shutdown()
    with store.open(path) as db:
        assert len(db.logs(limit=1000)) == 500


def _corrupt_sqlite_file(path: Path) -> bytes:
    """A real SQLite file whose pages after the header are garbage."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x TEXT)")
        conn.executemany("INSERT INTO t VALUES (?)", [("row",)] * 200)
    conn.close()
    data = bytearray(path.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)
    path.write_bytes(bytes(data))
    return bytes(data)


def test_a_corrupt_database_is_moved_aside_and_a_new_one_started(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "corrupt.db"
    original = _corrupt_sqlite_file(path)
    exporter = SQLiteExporter(path)
    assert exporter.export([log(1)]) is ExportResult.RETRYABLE
    assert exporter.export([log(1)]) is ExportResult.SUCCESS
    exporter.shutdown()
    moved = [p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(moved) == 1 and (tmp_path / moved[0]).read_bytes() == original
    with store.open(path) as db:
        assert [r.fields["n"] for r in db.logs()] == [1]
    assert obskit.pipeline_stats()["problems"]["sqlite.corrupt"] == 1


def test_a_file_that_is_not_sqlite_is_refused_at_setup_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "important.json"
    path.write_text('{"keep": "me"}\n')
    with pytest.raises(ConfigError, match="is not an SQLite database"):
        SQLiteExporter(path)
    with pytest.raises(ConfigError, match="is not an SQLite database"):
        obskit.init(exporters=[SQLiteExporter(path)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["important.json"]
    assert path.read_text() == '{"keep": "me"}\n'


def test_a_file_replaced_by_a_non_sqlite_one_at_run_time_is_never_moved(tmp_path: Path) -> None:
    path = tmp_path / "obskit.db"
    exporter = SQLiteExporter(path)
    assert exporter.export([log(1)]) is ExportResult.SUCCESS
    exporter.shutdown()
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    path.write_text("someone else's notes\n" * 100)
    assert exporter.export([log(2)]) is ExportResult.RETRYABLE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obskit.db"]
    assert path.read_text().startswith("someone else's notes")


def test_an_unwritable_path_warns_once_and_never_raises(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should be")
    memory = obskit.exporters.InMemoryExporter()
    obskit.init(exporters=[SQLiteExporter(blocker / "x.db"), memory], retry_max_elapsed_s=0.3)
    log_ = obskit.get_logger("t")
    for n in range(5):
        log_.info("still logging", n=n)
    obskit.flush(timeout_s=30)
    assert len(memory.logs) == 5
    obskit.shutdown(timeout_s=2)
    warnings = [line for line in capfd.readouterr().err.splitlines() if str(blocker) in line]
    assert len(warnings) == 1 and "retrying" in warnings[0]
