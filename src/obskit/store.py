"""Reading the embedded store: what :class:`~obskit.exporters.SQLiteExporter` wrote.

``obskit.store.open(path)`` gives a :class:`Store`, usable while applications keep writing the
file (WAL mode: readers never block writers). Queries return the same signal types the
exporters saw (:class:`~obskit.signals.LogRecord`, :class:`~obskit.signals.Alert`, ...), plus
two summaries the writer maintains: :class:`StoredErrorGroup` and :class:`MetricRollup`.

>>> import obskit, tempfile, os
>>> from obskit.exporters import SQLiteExporter
>>> path = os.path.join(tempfile.mkdtemp(), "shop.db")
>>> obskit.init(service="shop", exporters=[SQLiteExporter(path)])
>>> obskit.get_logger("shop").warning("card declined", order=7)
>>> obskit.shutdown()
>>> with obskit.store.open(path) as store:
...     [(r.level, r.event, r.fields) for r in store.logs(level="warning")]
[('warning', 'card declined', {'order': 7})]
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from obskit import _codec, _store_metrics
from obskit._store_metrics import HistogramSummary, MetricRollup
from obskit.levels import level_number
from obskit.signals import Alert, Anomaly, ErrorEvent, HealthRecord, LogRecord, SpanRecord

__all__ = ["HistogramSummary", "MetricRollup", "Store", "StoredErrorGroup", "open"]


@dataclass(frozen=True, slots=True)
class StoredErrorGroup:
    """All error events sharing one fingerprint, from every process writing the store."""

    fingerprint: str
    title: str
    culprit: str
    level: str
    service: str
    count: int
    first_seen: float
    last_seen: float
    last_event_id: str
    #: Distinct users (by id, else e-mail, username or IP address).
    users: int = 0
    #: "unresolved", "resolved" (by :meth:`Store.resolve`) or "regressed" (seen again since).
    status: str = "unresolved"
    #: Times the group came back after being resolved.
    regressions: int = 0


def open(path: str | os.PathLike[str]) -> Store:
    """Open the store at ``path`` for reading; ``FileNotFoundError`` if there is none."""
    return Store(path)


class Store:
    """Read access to an obskit SQLite database. Use as a context manager, or ``close()``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"no obskit database at {self.path} (obskit writes one when "
                "exporters include 'sqlite' or SQLiteExporter(path))"
            )
        self._conn = sqlite3.connect(str(self.path), timeout=5.0, check_same_thread=False)
        self._conn.execute("PRAGMA query_only = 1")
        self._tables = {
            row[0]
            for row in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- logs ------------------------------------------------------------------------------

    def logs(
        self,
        *,
        level: str | None = None,
        logger: str | None = None,
        contains: str | None = None,
        trace_id: str | None = None,
        request_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        scan_limit: int | None = None,
    ) -> list[LogRecord]:
        """Log records, newest first: at least ``level``, from loggers named ``logger`` (or its
        children), whose message contains ``contains`` (case-insensitive), of one trace or
        request, within a time range.

        ``scan_limit`` bounds the work of filters no index serves (level, logger, text, request
        id): they are applied to the newest ``scan_limit`` records of the time range only.
        """
        rows = self._log_rows(
            "", level, logger, contains, trace_id, request_id, since, until, limit, scan_limit
        )
        return [_log_record(row[1:]) for row in rows]

    def log_tail(
        self, after_id: int | None, *, limit: int = 200, **filters: Any
    ) -> tuple[list[LogRecord], int]:
        """Records written after the record numbered ``after_id``, newest first, and the newest
        record number (the cursor for the next call). ``None`` starts at the newest record.
        ``filters`` are those of :meth:`logs`."""
        if "logs" not in self._tables:
            return [], 0
        (newest,) = self._conn.execute("SELECT coalesce(max(id), 0) FROM logs").fetchone()
        if after_id is None or newest <= after_id:
            return [], int(newest)
        rows = self._log_rows(
            "id > ? AND id <= ?",
            filters.get("level"),
            filters.get("logger"),
            filters.get("contains"),
            filters.get("trace_id"),
            filters.get("request_id"),
            None,
            None,
            limit,
            None,
            extra=[after_id, newest],
        )  # fmt: skip
        return [_log_record(row[1:]) for row in rows], int(newest)

    def _log_rows(
        self,
        condition: str,
        level: str | None,
        logger: str | None,
        contains: str | None,
        trace_id: str | None,
        request_id: str | None,
        since: float | None,
        until: float | None,
        limit: int,
        scan_limit: int | None,
        extra: list[Any] | None = None,
    ) -> list[Any]:
        if "logs" not in self._tables:
            return []
        where, params = _time_range(since, until)
        if condition:
            where.append(condition)
            params += extra or []
        if trace_id:  # indexed: narrows before the scan budget applies
            where.append("trace_id = ?")
            params.append(trace_id)
        source = "logs"
        if scan_limit is not None:
            inner = " WHERE " + " AND ".join(where) if where else ""
            source = f"(SELECT * FROM logs{inner} ORDER BY ts DESC, id DESC LIMIT ?)"
            params.append(max(0, scan_limit))
            where = []
        if level is not None:
            where.append("level_no >= ?")
            params.append(level_number(level, 0))
        if logger:
            where.append("(logger = ? OR logger LIKE ? ESCAPE '\\')")
            params += [logger, _like_prefix(logger) + ".%"]
        if contains:
            where.append("instr(lower(event), lower(?)) > 0")
            params.append(contains)
        if request_id:  # a plain substring test first: json_extract only where it can match
            where.append("instr(fields, ?) > 0 AND json_extract(fields, '$.request_id') = ?")
            params += [_codec.dumps(request_id), request_id]
        query = (
            "SELECT id, ts, level, event, logger, fields, service, environment, trace_id, "
            f"span_id, exception FROM {source}"
        )
        if where:
            query += " WHERE " + " AND ".join(where)
        if scan_limit is None:
            query += " ORDER BY ts DESC, id DESC"
        query += " LIMIT ?"
        return self._conn.execute(query, [*params, max(0, limit)]).fetchall()

    def level_counts(self, *, since: float | None = None) -> dict[str, int]:
        """How many log records there are at each level."""
        where, params = _time_range(since, None)
        rows = self._select(
            "SELECT level, count(*) FROM logs", "logs", where, params, "GROUP BY level"
        )
        return {level: count for level, count in rows}

    # -- errors ----------------------------------------------------------------------------

    def error_groups(
        self, *, limit: int = 20, order_by: str = "last_seen"
    ) -> list[StoredErrorGroup]:
        """Error groups (one per fingerprint), most recently seen first, or by ``"count"``."""
        order = "count DESC, last_seen DESC" if order_by == "count" else "last_seen DESC"
        fleet = {"error_group_users", "error_group_status"} <= self._tables
        extra = (
            ", (SELECT count(*) FROM error_group_users u WHERE u.fingerprint = g.fingerprint), "
            "coalesce(s.status, 'unresolved'), coalesce(s.regressions, 0) FROM error_groups g "
            "LEFT JOIN error_group_status s ON s.fingerprint = g.fingerprint"
            if fleet
            else " FROM error_groups g"
        )
        rows = self._select(
            "SELECT g.fingerprint, title, culprit, level, service, count, first_seen, last_seen, "
            "last_event_id" + extra,
            "error_groups",
            [],
            [],
            f"ORDER BY {order}",
            limit,
        )
        return [
            StoredErrorGroup(fp, title or "", culprit or "", level or "", service or "", *rest)
            for fp, title, culprit, level, service, *rest in rows
        ]

    def resolve(self, fingerprint: str, *, now: float | None = None) -> str | None:
        """Mark a group resolved for every process (its next event makes it "regressed").

        ``fingerprint`` may be a unique prefix (6 characters or more). Returns the full
        fingerprint, or ``None`` when no single group matches. The only write a store makes.
        """
        if "error_group_status" not in self._tables or len(fingerprint) < 6:
            return None  # (no status table: a file no writer of schema 2 has opened yet)
        matches = self._conn.execute(
            "SELECT fingerprint FROM error_groups WHERE fingerprint >= ? AND fingerprint < ? "
            "LIMIT 2",
            (fingerprint, fingerprint + "\uffff"),
        ).fetchall()
        if len(matches) != 1:
            return None
        (found,) = matches[0]
        with closing(sqlite3.connect(str(self.path), timeout=5.0, isolation_level=None)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO error_group_status (fingerprint, status, resolved_at) "
                "VALUES (?, 'resolved', ?) ON CONFLICT (fingerprint) DO UPDATE SET "
                "status = 'resolved', resolved_at = excluded.resolved_at",
                (found, time.time() if now is None else now),
            )
            conn.execute("COMMIT")
        return str(found)

    def errors(self, *, fingerprint: str | None = None, limit: int = 50) -> list[ErrorEvent]:
        """Error events, newest first (only those of one group with ``fingerprint``)."""
        where, params = ([], []) if fingerprint is None else (["fingerprint = ?"], [fingerprint])
        return self._signals("errors", where, params, limit)

    # -- health, alerts, anomalies, spans, metrics -----------------------------------------

    def health(self, *, limit: int = 20) -> list[HealthRecord]:
        """Health reports, newest first."""
        return self._signals("health", [], [], limit)

    def alerts(
        self, *, rule: str | None = None, state: str | None = None, limit: int = 50
    ) -> list[Alert]:
        """Alert state changes (pending, firing, resolved), newest first."""
        where: list[str] = []
        params: list[Any] = []
        if rule:
            where.append("rule = ?")
            params.append(rule)
        if state:
            where.append("state = ?")
            params.append(state)
        return self._signals("alerts", where, params, limit)

    def anomalies(self, *, limit: int = 50) -> list[Anomaly]:
        """Flagged anomalies, newest first."""
        return self._signals("anomalies", [], [], limit)

    def spans(self, *, trace_id: str | None = None, limit: int = 100) -> list[SpanRecord]:
        """Finished spans, newest first (only one trace's with ``trace_id``)."""
        where, params = ([], []) if trace_id is None else (["trace_id = ?"], [trace_id])
        return self._signals("spans", where, params, limit)

    def metrics(
        self,
        *,
        name: str | None = None,
        since: float | None = None,
        until: float | None = None,
        buckets: bool = False,
        limit: int | None = 1000,
        **matchers: Any,
    ) -> list[MetricRollup]:
        """Per-minute rollups in ``[since, until)``, newest minute first; series whose labels
        equal ``matchers``; with ``buckets=True`` histograms carry their bucket counts."""
        if "metric_rollups" not in self._tables:
            return []
        return _store_metrics.rollups(self._conn, name=name, since=since, until=until,
                                      matchers=matchers, buckets=buckets, limit=limit)  # fmt: skip

    def histogram(
        self,
        name: str,
        *,
        since: float | None = None,
        until: float | None = None,
        **matchers: Any,
    ) -> HistogramSummary:
        """Every sample of histogram ``name`` in ``[since, until)`` merged by bucket:
        ``.count``, ``.sum``, ``.min``, ``.max``, ``.buckets``, ``.quantile(q)``."""
        if "metric_rollups" not in self._tables:
            return HistogramSummary(0, 0.0, None, None, [])
        return _store_metrics.histogram(
            self._conn, name, since=since, until=until, matchers=matchers
        )

    def quantile(
        self,
        name: str,
        q: float,
        *,
        since: float | None = None,
        until: float | None = None,
        **matchers: Any,
    ) -> float | None:
        """The ``q`` quantile (0.95 for p95) of histogram ``name`` over ``[since, until)``."""
        return self.histogram(name, since=since, until=until, **matchers).quantile(q)

    def timeseries(
        self,
        name: str,
        aggregation: str = "sum",
        *,
        since: float | None = None,
        until: float | None = None,
        **matchers: Any,
    ) -> list[tuple[float, float | None]]:
        """(minute, value) oldest first; ``aggregation`` as ``obskit.metrics.query``'s."""
        if "metric_rollups" not in self._tables:
            return []
        return _store_metrics.timeseries(self._conn, name, aggregation, since=since,
                                         until=until, matchers=matchers)  # fmt: skip

    def metric_names(self) -> list[tuple[str, str, str]]:
        """(name, metric type, unit) of every metric with rollups."""
        if "metric_rollups" not in self._tables:
            return []
        return _store_metrics.metric_names(self._conn)

    # -- overview --------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Rows per table: logs, errors, error_groups, spans, metrics, health, alerts, ..."""
        return {
            table: self._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in sorted(self._tables)
        }

    def time_range(self) -> tuple[float, float] | None:
        """Oldest and newest log timestamp, or ``None`` when there are no logs."""
        if "logs" not in self._tables:
            return None
        low, high = self._conn.execute("SELECT min(ts), max(ts) FROM logs").fetchone()
        return None if low is None else (low, high)

    def services(self) -> list[str]:
        """Service names that wrote log records."""
        rows = self._select("SELECT DISTINCT service FROM logs", "logs", [], [], "ORDER BY 1")
        return [row[0] for row in rows if row[0]]

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of a read-only SQL query (the connection refuses writes)."""
        return self._conn.execute(sql, params).fetchall()

    def has_table(self, name: str) -> bool:
        """Whether the store holds table ``name`` (an empty or older store may not)."""
        return name in self._tables

    # -- plumbing --------------------------------------------------------------------------

    def _select(
        self,
        query: str,
        table: str,
        where: list[str],
        params: list[Any],
        tail: str = "",
        limit: int | None = None,
    ) -> list[Any]:
        if table not in self._tables:
            return []
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " " + tail
        if limit is not None:
            query += " LIMIT ?"
            params = [*params, max(0, limit)]
        return self._conn.execute(query, params).fetchall()

    def _signals(self, table: str, where: list[str], params: list[Any], limit: int) -> list[Any]:
        rows = self._select(
            f"SELECT data FROM {table}", table, where, params, "ORDER BY ts DESC, id DESC", limit
        )
        out = []
        for (data,) in rows:
            try:
                signal = _codec.decode(_codec.loads(data))
            except (ValueError, TypeError):
                continue  # a row this version cannot read
            if signal is not None:
                out.append(signal)
        return out


def _log_record(row: Any) -> LogRecord:
    ts, level, event, logger, fields, service, environment, trace, span, exception = row
    return LogRecord(
        timestamp=ts,
        level=level,
        event=event or "",
        logger=logger or "",
        fields=_json_dict(fields),
        service=service or "",
        environment=environment or "",
        trace_id=trace,
        span_id=span,
        exception=exception,
    )


def _time_range(since: float | None, until: float | None) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if since is not None:
        where.append("ts >= ?")
        params.append(since)
    if until is not None:
        where.append("ts <= ?")
        params.append(until)
    return where, params


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _json_dict(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = _codec.loads(text)
    except ValueError:
        return {"unreadable": text}
    return value if isinstance(value, dict) else {"value": value}
