"""SQLiteExporter: the embedded store, one SQLite file holding every signal kind.

It is the exporter for a user with no server: ``obskit report``, ``obskit logs`` and
``obskit errors`` read the file (through :mod:`obskit.store`) while the application writes it.

How it behaves:

* **Batched writes on the worker thread**: one ``BEGIN IMMEDIATE`` transaction per batch, so a
  batch lands whole or not at all and the write lock is taken up front.
* **WAL mode**, so readers never block the writer, and several processes can write the same
  file: a writer that finds the file locked waits ``busy_timeout_s``, then answers
  ``RETRYABLE`` and the processor retries the batch; nothing is lost.
* **Retention** by age (``max_age_s``) and size (``max_bytes``, the bytes in use by rows; the
  oldest rows of the bulky tables go first), applied every ``retention_interval_s``.
* **Faults never reach the application**: locked, disk full, unwritable directory give
  ``RETRYABLE`` (the batch stays queued); a corrupt file is moved aside as
  ``<path>.corrupt-<time>`` and a fresh one started. Each fault prints one warning and is
  counted in ``obskit.pipeline_stats()["problems"]``.
"""

from __future__ import annotations

import operator
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from obskit import _codec, diagnostics
from obskit.diagnostics import ConfigError, require_kinds, require_number, require_path
from obskit.errors.groups import user_key
from obskit.exporters._sqlite_metrics import write_points
from obskit.exporters._sqlite_schema import BULK_TABLES, SCHEMA, SCHEMA_VERSION, TIME_TABLES
from obskit.exporting import LOCAL_FILE_BATCHING, ExportResult, reset_in_forked_children
from obskit.levels import level_number
from obskit.signals import Signal

__all__ = ["SQLiteExporter"]

DEFAULT_MAX_AGE_S = 7 * 24 * 3600.0
DEFAULT_MAX_BYTES = 256 * 1024 * 1024

_INSERT_LOG = (
    "INSERT INTO logs (ts, level, level_no, logger, event, service, environment, trace_id, "
    "span_id, fields, exception) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: kind -> (table, the attributes kept in columns); the whole signal also goes in ``data``.
_STORED: dict[str, tuple[str, tuple[str, ...]]] = {
    kind: (table, tuple(attributes.split()))
    for kind, table, attributes in (
        ("error", "errors", "timestamp event_id fingerprint level title culprit service trace_id"),
        (
            "span",
            "spans",
            "timestamp name trace_id span_id parent_span_id duration_ms status service",
        ),
        ("health", "health", "timestamp status service"),
        ("alert", "alerts", "timestamp rule state severity value fingerprint service"),
        ("anomaly", "anomalies", "timestamp metric value score detector service"),
    )
}


def _insert_sql(table: str, attributes: tuple[str, ...]) -> str:
    columns = ["ts" if a == "timestamp" else a for a in attributes] + ["data"]
    marks = ", ".join("?" * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


_INSERTS = {kind: _insert_sql(table, attrs) for kind, (table, attrs) in _STORED.items()}
_INSERTS["log"] = _INSERT_LOG
_INSERTS["other"] = "INSERT INTO other_signals (ts, kind, data) VALUES (?, ?, ?)"
_GETTERS = {kind: operator.attrgetter(*attrs) for kind, (_, attrs) in _STORED.items()}
_UPSERT_GROUP = """
INSERT INTO error_groups (fingerprint, title, culprit, level, service, count, first_seen,
                          last_seen, last_event_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (fingerprint) DO UPDATE SET
    count = count + excluded.count,
    first_seen = min(first_seen, excluded.first_seen),
    title = CASE WHEN excluded.last_seen >= last_seen THEN excluded.title ELSE title END,
    culprit = CASE WHEN excluded.last_seen >= last_seen THEN excluded.culprit ELSE culprit END,
    level = CASE WHEN excluded.last_seen >= last_seen THEN excluded.level ELSE level END,
    last_event_id = CASE WHEN excluded.last_seen >= last_seen
                         THEN excluded.last_event_id ELSE last_event_id END,
    last_seen = max(last_seen, excluded.last_seen)
"""
_ADD_GROUP_USER = "INSERT OR IGNORE INTO error_group_users (fingerprint, user) VALUES (?, ?)"
_MARK_REGRESSION = """
UPDATE error_group_status SET status = 'regressed', regressions = regressions + 1
WHERE fingerprint = ? AND status = 'resolved' AND resolved_at < ?
"""


class SQLiteExporter:
    """Writes every signal into the SQLite database at ``path`` (created if missing).

    ``kinds`` limits which signal kinds are stored (default: all). ``clock`` gives the time
    retention compares against (injected by tests).
    """

    #: A local file: bigger, rarer batches than a remote backend's (see LOCAL_FILE_BATCHING).
    processor_defaults: ClassVar[Mapping[str, Any]] = LOCAL_FILE_BATCHING

    def __init__(
        self,
        path: str | os.PathLike[str] = "obskit.db",
        *,
        max_age_s: float | None = DEFAULT_MAX_AGE_S,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
        retention_interval_s: float = 60.0,
        busy_timeout_s: float = 2.0,
        kinds: Collection[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        owner = "SQLiteExporter"
        self.path = require_path(owner, "path", path)
        require_number(owner, "max_age_s", max_age_s, none=True)
        require_number(owner, "max_bytes", max_bytes, integer=True, none=True)
        require_number(owner, "retention_interval_s", retention_interval_s, zero=True)
        require_number(owner, "busy_timeout_s", busy_timeout_s, zero=True)
        if not callable(clock):
            raise ConfigError(f"{owner}: clock must be a function returning UNIX time")
        if not _is_sqlite_or_empty(self.path):
            raise ConfigError(
                f"{owner}: {str(self.path)!r} exists and is not an SQLite database; "
                "choose another path (obskit never moves or overwrites a file it did not make)"
            )
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self.retention_interval_s = retention_interval_s
        self.busy_timeout_s = busy_timeout_s
        self.kinds = require_kinds(owner, kinds)
        self.clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._next_retention = 0.0
        self._fork_locked = False
        reset_in_forked_children(self)

    # -- the Exporter protocol -------------------------------------------------------------

    def export(self, batch: Sequence[Signal]) -> ExportResult:
        kinds = self.kinds
        signals = [s for s in batch if kinds is None or s.kind in kinds]
        if not signals:
            return ExportResult.SUCCESS
        rows = _rows_for(signals)
        with self._lock:
            try:
                _write(self._connection(), rows)
            except (sqlite3.Error, OSError) as exc:
                return self._fault(exc)
            if self.clock() >= self._next_retention:
                try:
                    self.apply_retention()
                except sqlite3.Error as exc:  # the batch is in; pruning waits for next time
                    self._fault(exc)
        return ExportResult.SUCCESS

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        return True  # every batch is committed before export returns

    def shutdown(self, timeout_s: float = 5.0) -> None:
        if self._lock.acquire(timeout=diagnostics.bounded_timeout(timeout_s)):
            try:
                self._close()
            finally:
                self._lock.release()

    # -- retention -------------------------------------------------------------------------

    def apply_retention(self) -> None:
        """Delete rows older than ``max_age_s``, then the oldest until under ``max_bytes``."""
        conn = self._connection()
        now = self.clock()
        self._next_retention = now + self.retention_interval_s
        if self.max_age_s is not None:
            cutoff = now - self.max_age_s
            conn.execute("BEGIN IMMEDIATE")
            try:
                for table in TIME_TABLES:
                    conn.execute(f"DELETE FROM {table} WHERE ts < ?", (cutoff,))
                conn.execute("DELETE FROM error_groups WHERE last_seen < ?", (cutoff,))
                for table in ("error_group_users", "error_group_status"):
                    conn.execute(
                        f"DELETE FROM {table} WHERE fingerprint NOT IN "
                        "(SELECT fingerprint FROM error_groups)"
                    )
                for table in ("metric_rollups", "metric_buckets"):
                    conn.execute(f"DELETE FROM {table} WHERE minute < ?", (cutoff - 60.0,))
                conn.execute("DELETE FROM metric_cursors WHERE ts < ?", (cutoff,))
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        if self.max_bytes is not None:
            _shrink_to(conn, self.max_bytes)
        conn.execute("PRAGMA incremental_vacuum")

    # -- connection and faults -------------------------------------------------------------

    def _before_fork(self) -> None:
        # SQLite forbids carrying a connection across fork: its per-file lock bookkeeping
        # would tell the child it holds the parent's locks. Let the write in progress finish,
        # close the connection, and hold the lock until the fork is done (reopened on use).
        self._fork_locked = self._lock.acquire(timeout=self.busy_timeout_s + 1.0)
        if self._fork_locked:
            self._close()

    def _after_fork_in_parent(self) -> None:
        if getattr(self, "_fork_locked", False):
            self._fork_locked = False
            self._lock.release()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._fork_locked = False
        if self._conn is not None:  # the write did not finish in time: never touch it
            _inherited.append(self._conn)
        self._conn, self._pid = None, os.getpid()

    def _connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # forked: the parent's connection is not ours to use
            self._conn, self._pid = None, os.getpid()
        if self._conn is None:
            self._conn = _open(self.path, self.busy_timeout_s)
        return self._conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            try:
                conn.close()
            except sqlite3.Error:
                pass

    def _fault(self, exc: sqlite3.Error | OSError) -> ExportResult:
        kind, message, retry = _classify(exc)
        where = f"SQLiteExporter({self.path})"
        if kind == "corrupt" and not _is_sqlite_or_empty(self.path):
            self._close()
            message = "the file is not an SQLite database (left as it is)"
        elif kind == "corrupt":
            self._close()
            moved = _quarantine(self.path, self.clock())
            message += f"; moved it to {moved.name} and started a new database"
        elif kind != "locked":
            self._close()
        verdict = "retrying" if retry else "batch dropped"
        diagnostics.report(f"sqlite.{kind}", f"{where}: {message} ({exc}); {verdict}")
        return ExportResult.RETRYABLE if retry else ExportResult.FAILURE


#: Connections a forked child inherited (never used or closed by the child).
_inherited: list[sqlite3.Connection | None] = []


def _open(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
    )
    try:
        if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes on an empty file
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
    except BaseException:
        conn.close()
        raise
    return conn


Rows = dict[str, list[tuple[Any, ...]]]


#: Signal kinds whose every float the scrubber sanitised (so the faster encoder writes them
#: exactly); the others (health, alerts, anomalies) may carry NaN, which only ``dumps`` keeps.
_SANITISED = frozenset({"log", "span", "error"})


def _log_row(s: Any) -> tuple[Any, ...]:
    level_no = level_number(s.level)
    fields = _codec.dumps_sanitised(s.fields)
    return (s.timestamp, s.level, level_no, s.logger, s.event, s.service, s.environment,
            s.trace_id, s.span_id, fields, s.exception)  # fmt: skip


def _rows_for(signals: list[Signal]) -> Rows:
    """Turn a batch into parameter tuples per statement (pure Python, no I/O)."""
    rows: Rows = {}
    groups: dict[str, list[Any]] = {}
    metric_points: list[Signal] = []
    for s in signals:
        kind = s.kind
        if kind == "metric":
            metric_points.append(s)
            continue
        if kind == "log":
            row = _log_row(s)
        elif kind in _GETTERS:
            dumps = _codec.dumps_sanitised if kind in _SANITISED else _codec.dumps
            row = (*_GETTERS[kind](s), dumps(_codec.encode(s)))
            if kind == "error":
                _add_to_group(groups, s)
        else:
            kind = "other"
            row = (getattr(s, "timestamp", time.time()), s.kind, _codec.dumps(_encode_any(s)))
        rows.setdefault(kind, []).append(row)
    if groups:
        rows["error_group"] = [tuple(g[:9]) for g in groups.values()]
        rows["error_group_user"] = [(fp, user) for fp, g in groups.items() for user in g[9]]
        rows["error_group_regression"] = [(fp, g[7]) for fp, g in groups.items()]
    if metric_points:
        rows["metric"] = metric_points
    return rows


def _add_to_group(groups: dict[str, list[Any]], event: Any) -> None:
    group = groups.get(event.fingerprint)
    user = user_key(event.user)
    if group is None:
        groups[event.fingerprint] = [event.fingerprint, event.title, event.culprit, event.level,
                                     event.service, 1, event.timestamp, event.timestamp,
                                     event.event_id, set() if user is None else {user}]  # fmt: skip
        return
    if user is not None:
        group[9].add(user)
    group[5] += 1
    group[6] = min(group[6], event.timestamp)
    if event.timestamp >= group[7]:
        group[1:5] = [event.title, event.culprit, event.level, event.service]
        group[7], group[8] = event.timestamp, event.event_id


def _number(value: Any) -> float | None:
    """A float for a REAL column; scrubbing turns NaN into the string "NaN", stored as NULL."""
    return float(value) if isinstance(value, (int, float)) else None


def _encode_any(signal: Any) -> Any:
    try:
        return _codec.encode(signal)
    except TypeError:  # not a dataclass: keep its presentation form
        return signal.to_dict()


def _write(conn: sqlite3.Connection, rows: Rows) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for kind, params in rows.items():
            if kind == "error_group":
                conn.executemany(_UPSERT_GROUP, params)
            elif kind == "error_group_user":
                conn.executemany(_ADD_GROUP_USER, params)
            elif kind == "error_group_regression":
                conn.executemany(_MARK_REGRESSION, params)
            elif kind == "metric":
                write_points(conn, params)
            else:
                conn.executemany(_INSERTS[kind], params)
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # the original error says more


def _used_bytes(conn: sqlite3.Connection) -> int:
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def _shrink_to(conn: sqlite3.Connection, max_bytes: int) -> None:
    """Delete the oldest quarter of each bulky table until the rows fit in ``max_bytes``."""
    for tables in (BULK_TABLES, ("health", "alerts")):
        while _used_bytes(conn) > max_bytes:
            deleted = 0
            conn.execute("BEGIN IMMEDIATE")
            try:
                for table in tables:
                    (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                    if count:
                        deleted += conn.execute(
                            f"DELETE FROM {table} WHERE id IN "
                            f"(SELECT id FROM {table} ORDER BY id LIMIT ?)",
                            (count // 4 + 1,),
                        ).rowcount
                (oldest,) = conn.execute("SELECT min(minute) FROM metric_rollups").fetchone()
                if oldest is not None:
                    for table in ("metric_rollups", "metric_buckets"):
                        conn.execute(f"DELETE FROM {table} WHERE minute <= ?", (oldest,))
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            if not deleted:
                break


def _classify(exc: sqlite3.Error | OSError) -> tuple[str, str, bool]:
    """(problem kind, explanation, retryable) for a sqlite3 or file-system error."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc).lower()
    if "locked" in text or "busy" in text or name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return "locked", "the database is locked by another writer", True
    if "full" in text or name.startswith("SQLITE_FULL"):
        return "disk_full", "the disk (or the database size limit) is full", True
    if (
        "malformed" in text
        or "not a database" in text
        or name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
    ):
        return "corrupt", "the database file is corrupt", True
    if isinstance(exc, (sqlite3.OperationalError, OSError)):
        return "unavailable", "cannot write the database", True
    return "error", "a database error", False


_SQLITE_HEADER = b"SQLite format 3\x00"


def _is_sqlite_or_empty(path: Path) -> bool:
    """Whether ``path`` is missing, empty, or starts with SQLite's file header."""
    try:
        with open(path, "rb") as file:
            head = file.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return True
    except OSError:
        return True  # unreadable or a directory: the connection reports that itself
    return not head or head == _SQLITE_HEADER


def _quarantine(path: Path, now: float) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            try:
                os.replace(source, target.with_name(target.name + suffix))
            except OSError:
                source.unlink(missing_ok=True)
    return target
