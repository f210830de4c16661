"""Reading the metric rollups of the SQLite store (:mod:`obskit.store` delegates here).

Rows are per series and minute (see :mod:`obskit.exporters._sqlite_metrics`); these functions
select minutes in ``[since, until)`` and series whose labels equal the matchers, and fold them:
a counter's increases add up, a histogram's buckets add up per bound (so quantiles over any
range come out of the sums, as Prometheus' ``histogram_quantile(sum by (le) (increase(...)))``),
a gauge's values average.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from obskit.metrics.query import histogram_quantile, percentile

__all__ = [
    "HistogramSummary",
    "MetricRollup",
    "histogram",
    "merge_rollups",
    "metric_names",
    "rollups",
    "timeseries",
]


@dataclass(frozen=True, slots=True)
class MetricRollup:
    """One series (name + labels) over one minute.

    ``sum``: a counter's increase, a histogram's sum of samples, a gauge's sum of collected
    values (``points`` of them); ``count``: a histogram's samples; ``last``: the latest value
    (a counter's running total). ``buckets`` (upper bound -> count, +Inf last) for histograms
    when asked for.
    """

    name: str
    labels: dict[str, Any]
    minute: float
    metric_type: str
    unit: str
    service: str
    points: int
    count: int
    sum: float
    min: float | None
    max: float | None
    last: float | None
    #: a histogram's bucket bounds (upper, +Inf implicit)
    bounds: tuple[float, ...] = ()
    buckets: dict[float, int] = field(default_factory=dict)

    @property
    def mean(self) -> float | None:
        """The mean sample (histogram) or mean collected value (gauge, up-down counter)."""
        if self.metric_type == "histogram":
            return self.sum / self.count if self.count else None
        if self.metric_type == "counter":
            return None
        return self.sum / self.points if self.points else None


@dataclass(frozen=True, slots=True)
class HistogramSummary:
    """Every matching histogram sample of a time range, merged by bucket bound."""

    count: int
    sum: float
    min: float | None
    max: float | None
    #: (upper bound, count) in increasing order, +Inf last; counts are per bucket, every bound
    #: of the histograms' layouts listed (empty buckets with 0)
    buckets: list[tuple[float, int]]

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile from the buckets (Prometheus' interpolation)."""
        bounds = [le for le, _ in self.buckets if le != _INF]
        counts = [n for le, n in self.buckets if le != _INF]
        counts.append(sum(n for le, n in self.buckets if le == _INF))
        return histogram_quantile(q, bounds, counts)

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None


_INF = float("inf")
_COLUMNS = (
    "name, labels, minute, metric_type, unit, service, points, count, sum, min, max, last, bounds"
)


def _where(name: str | None, since: float | None, until: float | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if name is not None:
        clauses.append("name = ?")
        params.append(name)
    if since is not None:
        clauses.append("minute >= ?")
        params.append(since - since % 60.0)
    if until is not None:
        clauses.append("minute < ?")
        params.append(until)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _matches(labels: dict[str, Any], matchers: Mapping[str, Any]) -> bool:
    return all(str(labels.get(k)) == str(v) for k, v in matchers.items())


def rollups(
    conn: sqlite3.Connection,
    *,
    name: str | None = None,
    since: float | None = None,
    until: float | None = None,
    matchers: Mapping[str, Any] | None = None,
    buckets: bool = False,
    limit: int | None = 1000,
) -> list[MetricRollup]:
    """Rollups, newest minute first; with ``buckets``, histograms carry their bucket counts."""
    where, params = _where(name, since, until)
    sql = f"SELECT {_COLUMNS} FROM metric_rollups{where} ORDER BY minute DESC, name, labels"
    out = []
    for row in conn.execute(sql, params):
        labels = json.loads(row[1]) if row[1] else {}
        if matchers and not _matches(labels, matchers):
            continue
        name_, _, minute, kind, unit, service, points, count, total, low, high, last, layout = row
        bounds = tuple(json.loads(layout)) if layout else ()
        rollup = MetricRollup(name_, labels, minute, kind, unit or "", service or "", points,
                              count, total, low, high, last, bounds)  # fmt: skip
        out.append(rollup)
        if limit is not None and len(out) >= limit:
            break
    if buckets and out:
        wanted = {(r.name, _text(r.labels), r.minute) for r in out}
        found: dict[tuple[str, str, float], dict[float, int]] = {}
        where, params = _where(name, since, until)
        for n, labels_text, minute, le, count in conn.execute(
            f"SELECT name, labels, minute, le, count FROM metric_buckets{where} ORDER BY le",
            params,
        ):
            key = (n, labels_text, minute)
            if key in wanted:
                found.setdefault(key, {})[le] = count
        out = [_with_buckets(r, found.get((r.name, _text(r.labels), r.minute))) for r in out]
    return out


def _text(labels: dict[str, Any]) -> str:
    """Labels as the writer stored them (sorted compact JSON)."""
    return json.dumps(labels, separators=(",", ":"))


def _with_buckets(rollup: MetricRollup, buckets: dict[float, int] | None) -> MetricRollup:
    return dataclasses.replace(rollup, buckets=buckets) if buckets else rollup


def histogram(
    conn: sqlite3.Connection,
    name: str,
    *,
    since: float | None = None,
    until: float | None = None,
    matchers: Mapping[str, Any] | None = None,
) -> HistogramSummary:
    """Every matching sample of ``name`` in ``[since, until)``, merged by bucket bound."""
    rows = rollups(conn, name=name, since=since, until=until, matchers=matchers,
                   buckets=True, limit=None)  # fmt: skip
    return merge_rollups(rows)


def merge_rollups(rows: list[MetricRollup]) -> HistogramSummary:
    """Histogram rollups (with their buckets) merged into one summary."""
    merged: dict[float, int] = {}
    for row in rows:
        for bound in row.bounds:
            merged.setdefault(float(bound), 0)
        for le, count in row.buckets.items():
            merged[le] = merged.get(le, 0) + count
    lows = [r.min for r in rows if r.min is not None and r.count]
    highs = [r.max for r in rows if r.max is not None and r.count]
    return HistogramSummary(
        count=sum(r.count for r in rows),
        sum=sum(r.sum for r in rows),
        min=min(lows) if lows else None,
        max=max(highs) if highs else None,
        buckets=sorted(merged.items()),
    )


def timeseries(
    conn: sqlite3.Connection,
    name: str,
    aggregation: str = "sum",
    *,
    since: float | None = None,
    until: float | None = None,
    matchers: Mapping[str, Any] | None = None,
) -> list[tuple[float, float | None]]:
    """One value per minute, oldest first: ``sum``/``rate``/``count`` (increase, per second,
    samples), ``avg``, ``min``, ``max``, ``last``, or a percentile ``pNN`` of a histogram."""
    rows = rollups(conn, name=name, since=since, until=until, matchers=matchers,
                   buckets=percentile(aggregation) is not None, limit=None)  # fmt: skip
    by_minute: dict[float, list[MetricRollup]] = {}
    for row in rows:
        by_minute.setdefault(row.minute, []).append(row)
    return [(minute, _fold(by_minute[minute], aggregation)) for minute in sorted(by_minute)]


def _fold(rows: list[MetricRollup], aggregation: str) -> float | None:
    q = percentile(aggregation)
    if q is not None:
        return merge_rollups(rows).quantile(q)
    kind = rows[0].metric_type
    if aggregation == "sum":
        return sum(r.sum for r in rows) if kind != "gauge" else sum(r.last or 0 for r in rows)
    if aggregation == "rate":
        return sum(r.count if kind == "histogram" else r.sum for r in rows) / 60.0
    if aggregation == "count":
        return float(sum(r.count for r in rows) if kind == "histogram" else len(rows))
    if aggregation == "avg":
        if kind == "histogram":
            return merge_rollups(rows).mean
        points = sum(r.points for r in rows)
        return sum(r.sum for r in rows) / points if points else None
    if aggregation == "min":
        lows = [r.min for r in rows if r.min is not None]
        return min(lows) if lows else None
    if aggregation == "max":
        highs = [r.max for r in rows if r.max is not None]
        return max(highs) if highs else None
    if aggregation == "last":
        return sum(r.last or 0.0 for r in rows)
    raise ValueError(f"unknown aggregation {aggregation!r}")


def metric_names(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(name, metric type, unit) of every metric with rollups, by name: an index skip-scan from
    one name to the next (a large store is not scanned whole)."""
    names = conn.execute(
        "WITH RECURSIVE names(name) AS (SELECT min(name) FROM metric_rollups UNION ALL "
        "SELECT (SELECT min(name) FROM metric_rollups WHERE name > names.name) FROM names "
        "WHERE names.name IS NOT NULL) SELECT name FROM names WHERE name IS NOT NULL"
    ).fetchall()
    out = []
    for (name,) in names:
        kind, unit = conn.execute(
            "SELECT metric_type, unit FROM metric_rollups WHERE name = ? LIMIT 1", (name,)
        ).fetchone()
        out.append((name, kind or "", unit or ""))
    return out
