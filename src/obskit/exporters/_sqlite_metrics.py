"""Per-minute metric rollups in the SQLite store, histogram buckets included.

The reader sends cumulative points (a counter's total since its series started); a rollup
wants what happened within each minute. The writer keeps, per series and start time, the last
cumulative state it stored (``metric_cursors``, in the same file, so a restarted exporter or
another process writing the file counts nothing twice) and stores the difference. Delta points
are stored as they come.

``metric_rollups``, one row per (name, labels, minute):

* ``counter``: ``sum`` is the increase within the minute; ``last`` the running total;
* ``up_down_counter`` and ``gauge``: ``sum``/``points`` is the mean of the values collected,
  ``min``/``max`` their extremes, ``last`` the latest;
* ``histogram``: ``count`` and ``sum`` of the samples recorded within the minute, ``min`` and
  ``max`` (exact when the minute set a new extreme, else its buckets' bounds), ``bounds`` (the
  bucket layout, JSON), and one ``metric_buckets`` row per non-empty bucket ``le`` (+Inf
  included) with its count, so any range of minutes gives quantiles
  (:meth:`obskit.store.Store.quantile`).

Rows of all processes writing the file merge: the sums of several workers add up. Both tables
are ``WITHOUT ROWID``: the primary key b-tree holds the row, so a reader walking one series over
a range of minutes (the dashboard's charts, a week of buckets) reads no second b-tree.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

__all__ = ["ROLLUP_SCHEMA", "write_points"]

ROLLUP_SCHEMA = """
DROP TABLE IF EXISTS metrics;
CREATE TABLE IF NOT EXISTS metric_rollups (
    name TEXT NOT NULL, labels TEXT NOT NULL, minute REAL NOT NULL, metric_type TEXT NOT NULL,
    unit TEXT, service TEXT, points INTEGER NOT NULL, count INTEGER NOT NULL, sum REAL NOT NULL,
    min REAL, max REAL, last REAL, last_ts REAL NOT NULL, bounds TEXT,
    PRIMARY KEY (name, labels, minute)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS metric_rollups_minute ON metric_rollups (minute);
CREATE TABLE IF NOT EXISTS metric_buckets (
    name TEXT NOT NULL, labels TEXT NOT NULL, minute REAL NOT NULL, le REAL NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (name, labels, minute, le)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS metric_cursors (
    name TEXT NOT NULL, labels TEXT NOT NULL, service TEXT NOT NULL, start_ts REAL NOT NULL,
    value REAL NOT NULL, count INTEGER NOT NULL, buckets TEXT, min REAL, max REAL,
    ts REAL NOT NULL,
    PRIMARY KEY (name, labels, service, start_ts)
);
"""

_UPSERT_ROLLUP = """
INSERT INTO metric_rollups (name, labels, minute, metric_type, unit, service, points, count, sum,
                            min, max, last, last_ts, bounds)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name, labels, minute) DO UPDATE SET
    points = points + excluded.points,
    count = count + excluded.count,
    sum = sum + excluded.sum,
    min = min(coalesce(min, excluded.min), coalesce(excluded.min, min)),
    max = max(coalesce(max, excluded.max), coalesce(excluded.max, max)),
    last = CASE WHEN excluded.last_ts >= last_ts THEN excluded.last ELSE last END,
    last_ts = max(last_ts, excluded.last_ts),
    bounds = coalesce(excluded.bounds, bounds)
"""
_UPSERT_BUCKET = """
INSERT INTO metric_buckets (name, labels, minute, le, count) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name, labels, minute, le) DO UPDATE SET count = count + excluded.count
"""
_SELECT_CURSOR = (
    "SELECT value, count, buckets, min, max FROM metric_cursors "
    "WHERE name = ? AND labels = ? AND service = ? AND start_ts = ?"
)
_UPSERT_CURSOR = """
INSERT INTO metric_cursors (name, labels, service, start_ts, value, count, buckets, min, max, ts)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name, labels, service, start_ts) DO UPDATE SET
    value = excluded.value, count = excluded.count, buckets = excluded.buckets,
    min = excluded.min, max = excluded.max, ts = excluded.ts
"""

_INF = float("inf")


def write_points(conn: sqlite3.Connection, points: list[Any]) -> None:
    """Fold ``points`` into the rollups (inside the caller's transaction)."""
    rollups: list[tuple[Any, ...]] = []
    buckets: list[tuple[Any, ...]] = []
    cursors: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for point in points:
        value = point.value
        if type(value) not in (int, float):
            continue  # scrubbing turned NaN or infinity into a string
        labels = json.dumps(dict(sorted(point.labels.items())), separators=(",", ":"))
        minute = point.timestamp - point.timestamp % 60.0
        kind = point.metric_type
        if kind in ("counter", "histogram"):
            change = _change(conn, point, labels, cursors)
            if change is None:
                continue
            increase, count, counts, low, high = change
            last = float(value) if kind == "counter" else None
            layout = json.dumps(list(point.bounds)) if kind == "histogram" else None
            rollups.append((point.name, labels, minute, kind, point.unit, point.service, 1,
                            count, increase, low, high, last, point.timestamp,
                            layout))  # fmt: skip
            bounds = [*point.bounds, _INF]
            buckets.extend(
                (point.name, labels, minute, bound, n)
                for bound, n in zip(bounds, counts, strict=False)
                if n
            )
        else:
            number = float(value)
            rollups.append((point.name, labels, minute, kind, point.unit, point.service, 1, 0,
                            number, number, number, number, point.timestamp,
                            None))  # fmt: skip
    if cursors:
        conn.executemany(_UPSERT_CURSOR, [(*k, *v) for k, v in cursors.items()])
    if rollups:
        conn.executemany(_UPSERT_ROLLUP, rollups)
    if buckets:
        conn.executemany(_UPSERT_BUCKET, buckets)


Change = tuple[float, int, list[int], float | None, float | None]


def _change(
    conn: sqlite3.Connection,
    point: Any,
    labels: str,
    cursors: dict[tuple[Any, ...], tuple[Any, ...]],
) -> Change | None:
    """What happened since the stored cursor: (increase, count, bucket counts, min, max)."""
    counts = list(point.bucket_counts)
    if point.temporality == "delta" or point.start_timestamp is None:
        return float(point.value), point.count, counts, point.min, point.max
    key = (point.name, labels, point.service, point.start_timestamp)
    row = cursors.get(key)  # a second point of the series in this batch
    if row is None:
        row = conn.execute(_SELECT_CURSOR, key).fetchone()
    if row is not None and float(point.value) < row[0] and point.metric_type == "counter":
        return None  # an older point arriving late: already counted
    cursors[key] = (float(point.value), point.count, json.dumps(counts),
                    point.min, point.max, point.timestamp)  # fmt: skip
    if row is None:
        return float(point.value), point.count, counts, point.min, point.max
    value, count, stored, low, high = row[:5]
    before = json.loads(stored) if stored else []
    if len(before) == len(counts):
        counts = [a - b for a, b in zip(counts, before, strict=False)]
    new_count = point.count - count
    if point.metric_type != "histogram" or new_count <= 0:
        return float(point.value) - value, max(new_count, 0), counts, None, None
    return (
        float(point.value) - value,
        new_count,
        counts,
        _interval_min(point, low, counts),
        _interval_max(point, high, counts),
    )


def _interval_min(point: Any, before: float | None, counts: list[int]) -> float | None:
    if point.min is not None and (before is None or point.min < before):
        return float(point.min)  # a new extreme: exact
    for index, n in enumerate(counts):
        if n > 0:
            lower = point.bounds[index - 1] if index > 0 else point.min
            return None if lower is None else max(float(lower), float(point.min or lower))
    return None


def _interval_max(point: Any, before: float | None, counts: list[int]) -> float | None:
    if point.max is not None and (before is None or point.max > before):
        return float(point.max)
    for index in range(len(counts) - 1, -1, -1):
        if counts[index] > 0:
            upper = point.bounds[index] if index < len(point.bounds) else point.max
            return None if upper is None else min(float(upper), float(point.max or upper))
    return None
