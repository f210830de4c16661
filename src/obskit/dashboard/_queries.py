"""What the dashboard pages read: time-bucketed views over :class:`obskit.store.Store`.

Every query is bounded: it walks an index over the chosen time range, or (for filters no index
serves) a fixed number of the newest rows, so a page costs about the same on a 7-day store as on
a fresh one. Each runs as its own short read transaction, so writers are never held up.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from obskit.store import Store

__all__ = [
    "RANGES",
    "AlertHistory",
    "AnomalySeries",
    "CheckHistory",
    "GroupSummary",
    "Window",
    "alert_histories",
    "anomaly_series",
    "check_histories",
    "error_counts",
    "metric_means",
    "metric_unit",
    "series_labels",
    "top_error_groups",
]

#: Range name -> (length in seconds, slot width in seconds): 60 to 84 slots per chart.
RANGES: dict[str, tuple[float, float]] = {
    "15m": (900.0, 15.0),
    "1h": (3600.0, 60.0),
    "6h": (21600.0, 300.0),
    "24h": (86400.0, 1200.0),
    "7d": (604800.0, 7200.0),
}
DEFAULT_RANGE = "1h"
#: How many of a group's newest events the users count and the regression flag look at.
EVENT_SAMPLE = 1000
_SEVERITY = {"pass": 0, "warn": 1, "fail": 2}


@dataclass(frozen=True)
class Window:
    """The time range a page shows, cut into equal slots (the points of its charts)."""

    name: str
    start: float
    end: float
    step: float

    @classmethod
    def of(cls, name: str | None, now: float, end: float | None = None) -> Window:
        """The window called ``name`` (``15m`` ... ``7d``) ending at ``end`` (default ``now``)."""
        name = name if name in RANGES else DEFAULT_RANGE
        length, step = RANGES[name]
        last = min(end, now) if end is not None else now
        stop = math.ceil(last / step) * step
        return cls(name, stop - length, stop, step)

    @property
    def slots(self) -> int:
        return round((self.end - self.start) / self.step)

    def in_minutes(self) -> Window:
        """This window, or cut in minutes where its slots are shorter than the store's
        per-minute metric rollups (a 15-minute window has 15-second slots)."""
        if self.step >= 60.0:
            return self
        start = math.floor(self.start / 60.0) * 60.0
        return Window(self.name, start, self.end, 60.0)

    def slot_times(self) -> list[float]:
        return [self.start + i * self.step for i in range(self.slots)]

    def slot_of(self, ts: float) -> int:
        return min(self.slots - 1, max(0, int((ts - self.start) // self.step)))


# -- error groups ------------------------------------------------------------------------------


@dataclass
class GroupSummary:
    """An error group as the overview lists it: totals, and what happened within the window."""

    fingerprint: str
    title: str
    culprit: str
    level: str
    total: int
    first_seen: float
    last_seen: float
    in_window: int = 0
    counts: list[int] = field(default_factory=list)
    users: int = 0
    users_capped: bool = False
    regressed: bool = False


def error_counts(store: Store, fingerprint: str, window: Window) -> list[int]:
    """Events of one group per slot (an index-only walk of ``errors(fingerprint, ts)``)."""
    counts = [0] * window.slots
    rows = store.query(
        "SELECT CAST((ts - ?) / ? AS INTEGER), count(*) FROM errors "
        "WHERE fingerprint = ? AND ts >= ? AND ts < ? GROUP BY 1",
        (window.start, window.step, fingerprint, window.start, window.end),
    )
    for slot, count in rows:
        if 0 <= slot < window.slots:
            counts[slot] += count
    return counts


def top_error_groups(store: Store, window: Window, *, limit: int = 10) -> list[GroupSummary]:
    """The groups with the most events in the window, with sparkline counts, users, regression."""
    if not store.has_table("error_groups"):
        return []
    status = (
        "(SELECT status FROM error_group_status s WHERE s.fingerprint = g.fingerprint)"
        if store.has_table("error_group_status")
        else "NULL"
    )
    rows = store.query(
        f"SELECT fingerprint, title, culprit, level, count, first_seen, last_seen, {status} "
        "FROM error_groups g WHERE last_seen >= ? AND first_seen < ? "
        "ORDER BY last_seen DESC LIMIT 200",
        (window.start, window.end),
    )
    groups = []
    for fp, title, culprit, level, total, first, last, state in rows:
        group = GroupSummary(fp, title or "", culprit or "", level or "error", total, first, last)
        group.regressed = state == "regressed"
        group.counts = error_counts(store, fp, window)
        group.in_window = sum(group.counts)
        if group.in_window:
            groups.append(group)
    groups.sort(key=lambda g: (-g.in_window, -g.last_seen))
    for group in groups[:limit]:
        _add_users(store, group, window)
    return groups[:limit]


def _add_users(store: Store, group: GroupSummary, window: Window) -> None:
    """Distinct users and whether a regression happened, over the newest events of the window."""
    users, regressed, seen = store.query(
        "SELECT count(DISTINCT json_extract(data, '$.user.id')), "
        "max(coalesce(json_extract(data, '$.regression'), 0)), count(*) FROM "
        "(SELECT data FROM errors WHERE fingerprint = ? AND ts >= ? AND ts < ? "
        "ORDER BY ts DESC LIMIT ?)",
        (group.fingerprint, window.start, window.end, EVENT_SAMPLE),
    )[0]
    group.users = users or 0
    group.users_capped = seen >= EVENT_SAMPLE
    group.regressed = group.regressed or bool(regressed)


# -- health ------------------------------------------------------------------------------------


@dataclass
class CheckHistory:
    """One health check over the window: its worst status per slot and its latest result."""

    name: str
    slots: list[str | None]
    latest: dict[str, Any]
    latest_ts: float


def check_histories(store: Store, window: Window) -> tuple[list[CheckHistory], list[str | None]]:
    """Per-check status per slot (the worst seen in it), and the overall status per slot.

    Health reports are written when a status changes, so a check keeps the status of the last
    report before the window until the next one.
    """
    if not store.has_table("health"):
        return [], [None] * window.slots
    # from the last report before the window (its statuses hold into it) to the window's end
    since = store.query(
        "SELECT coalesce(max(ts), ?) FROM health WHERE ts < ?", (window.start, window.start)
    )[0][0]
    changes = store.query(
        "SELECT h.ts, j.key, json_extract(j.value, '$[0].status') FROM health h, "
        "json_each(h.data, '$.checks') j WHERE h.ts >= ? AND h.ts < ? ORDER BY h.ts, h.id",
        (since, window.end),
    )
    overall = store.query(
        "SELECT ts, status FROM health WHERE ts >= ? AND ts < ? ORDER BY ts, id",
        (since, window.end),
    )
    per_check: dict[str, list[tuple[float, str]]] = {}
    for ts, key, status in changes:
        per_check.setdefault(key.split(":", 1)[0], []).append((ts, status or "unknown"))
    latest = _latest_checks(store, window)
    histories = [
        CheckHistory(name, _slot_states(points, window), *latest.get(name, ({}, points[-1][0])))
        for name, points in sorted(per_check.items())
    ]
    return histories, _slot_states([(ts, s) for ts, s in overall], window)


def _latest_checks(store: Store, window: Window) -> dict[str, tuple[dict[str, Any], float]]:
    rows = store.query(
        "SELECT ts, data FROM health WHERE ts < ? ORDER BY ts DESC LIMIT 1", (window.end,)
    )
    if not rows:
        return {}
    ts, data = rows[0]
    checks = _loads(data).get("checks", {})
    out = {}
    for key, results in checks.items() if isinstance(checks, dict) else ():
        if isinstance(results, list) and results and isinstance(results[0], dict):
            out[key.split(":", 1)[0]] = (results[0], ts)
    return out


def _slot_states(points: list[tuple[float, str]], window: Window) -> list[str | None]:
    """The worst status in each slot; a status holds until the next point."""
    states: list[str | None] = [None] * window.slots
    current: str | None = None
    index = 0
    for slot, slot_start in enumerate(window.slot_times()):
        slot_end = slot_start + window.step
        worst = current
        while index < len(points) and points[index][0] < slot_end:
            current = points[index][1]
            if points[index][0] >= slot_start or worst is None:
                worst = _worse(worst, current)
            index += 1
        if current is not None:
            worst = _worse(worst, current)
        states[slot] = worst
    return states


def _worse(a: str | None, b: str) -> str:
    if a is None:
        return b
    return a if _SEVERITY.get(a, 1) >= _SEVERITY.get(b, 1) else b


# -- alerts ------------------------------------------------------------------------------------


@dataclass
class AlertHistory:
    """One alert instance (rule + labels): its state changes up to the end of the window."""

    fingerprint: str
    rule: str
    severity: str
    labels: dict[str, Any]
    summary: str
    changes: list[tuple[float, str, float | None]]  # (ts, state, value)

    @property
    def state(self) -> str:
        return self.changes[-1][1] if self.changes else "inactive"


def alert_histories(store: Store, window: Window) -> list[AlertHistory]:
    """Alert instances with a change in the window, or still active when it starts."""
    if not store.has_table("alerts"):
        return []
    rows = store.query(
        "SELECT ts, fingerprint, rule, state, severity, value, data FROM alerts "
        "WHERE id IN (SELECT max(id) FROM alerts WHERE ts < ? GROUP BY fingerprint) "
        "OR (ts >= ? AND ts < ?) ORDER BY ts, id",
        (window.start, window.start, window.end),
    )
    alerts: dict[str, AlertHistory] = {}
    for ts, fp, rule, state, severity, value, data in rows:
        alert = alerts.get(fp)
        if alert is None:
            if ts < window.start and state == "resolved":
                continue  # over before the window began
            body = _loads(data)
            annotations = body.get("annotations") or {}
            alert = alerts[fp] = AlertHistory(
                fp,
                rule or "",
                severity or "",
                body.get("labels") or {},
                str(annotations.get("summary", "")),
                [],
            )
        alert.changes.append((ts, state or "unknown", value))
    order = {"firing": 0, "pending": 1, "acknowledged": 2, "resolved": 3}
    return sorted(alerts.values(), key=lambda a: (order.get(a.state, 4), -a.changes[-1][0]))


# -- anomalies ---------------------------------------------------------------------------------


@dataclass
class AnomalySeries:
    """A metric series with anomalies in the window: its values per slot and the flagged points."""

    metric: str
    labels: dict[str, Any]
    detector: str
    points: list[tuple[float, float | None]]
    flagged: list[dict[str, Any]]
    unit: str = ""


def anomaly_series(store: Store, window: Window, *, limit: int = 6) -> list[AnomalySeries]:
    """Series with flagged points in the window, most flagged first."""
    if not store.has_table("anomalies"):
        return []
    rows = store.query(
        "SELECT data FROM anomalies WHERE ts >= ? AND ts < ? ORDER BY ts DESC LIMIT 2000",
        (window.start, window.end),
    )
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for (data,) in rows:
        body = _loads(data)
        labels = body.get("labels") or {}
        key = (str(body.get("metric", "")), json.dumps(labels, sort_keys=True))
        found.setdefault(key, []).append(body)
    ranked = sorted(found.items(), key=lambda item: -len(item[1]))[:limit]
    out = []
    for (metric, labels_text), flagged in ranked:
        labels = json.loads(labels_text)
        flagged.sort(key=lambda body: float(body.get("timestamp", 0)))
        out.append(
            AnomalySeries(
                metric,
                labels,
                str(flagged[0].get("detector", "")),
                metric_means(store, metric, labels, window),
                flagged,
                metric_unit(store, metric),
            )
        )
    return out


def metric_means(
    store: Store, name: str, labels: dict[str, Any], window: Window
) -> list[tuple[float, float | None]]:
    """The mean of one stored series per slot (``None`` where nothing was recorded): a gauge's
    mean value, a histogram's mean sample."""
    window = window.in_minutes()
    sums = [0.0] * window.slots
    counts = [0] * window.slots
    if store.has_table("metric_rollups"):
        for text in series_labels(store, name):
            if _loads(text) != labels:
                continue
            rows = store.query(
                "SELECT CAST((minute - ?) / ? AS INTEGER), sum(sum), "
                "sum(CASE metric_type WHEN 'histogram' THEN count ELSE points END) "
                "FROM metric_rollups WHERE name = ? AND labels = ? AND minute >= ? "
                "AND minute < ? GROUP BY 1",
                (window.start, window.step, name, text, window.start - 59.0, window.end),
            )
            for slot, total, count in rows:
                index = min(window.slots - 1, max(0, slot))
                sums[index] += total
                counts[index] += count
    return [
        (ts, sums[i] / counts[i] if counts[i] else None) for i, ts in enumerate(window.slot_times())
    ]


def metric_unit(store: Store, name: str) -> str:
    """The unit metric ``name`` was declared with ("" when none is stored)."""
    if not store.has_table("metric_rollups"):
        return ""
    rows = store.query("SELECT unit FROM metric_rollups WHERE name = ? LIMIT 1", (name,))
    return str(rows[0][0] or "") if rows else ""


def series_labels(store: Store, name: str, limit: int = 200) -> list[str]:
    """The label sets of metric ``name`` as stored (JSON text), by an index skip-scan."""
    rows = store.query(
        "WITH RECURSIVE s(labels) AS (SELECT min(labels) FROM metric_rollups WHERE name = ? "
        "UNION ALL SELECT (SELECT min(labels) FROM metric_rollups WHERE name = ? "
        "AND labels > s.labels) FROM s "
        "WHERE s.labels IS NOT NULL) SELECT labels FROM s WHERE labels IS NOT NULL LIMIT ?",
        (name, name, limit),
    )
    return [labels for (labels,) in rows]


# -- helpers -----------------------------------------------------------------------------------


def _loads(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
