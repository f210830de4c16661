"""Requests per route: rate, error ratio and latency percentiles per slot of a window.

The one place the dashboard reads request latency: the per-minute histogram rollups of
``http.server.request.duration`` (the HTTP middleware's, OpenTelemetry's name) or, for
``obskit.request`` scopes, ``obskit.request.duration``. Percentiles come from the summed bucket
counts with Prometheus' interpolation (``histogram_quantile``), so they are as fine as the
buckets; a slot is never shorter than the rollups' minute.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from obskit.dashboard._queries import Window, series_labels
from obskit.metrics.query import histogram_quantile
from obskit.store import Store

__all__ = ["HISTOGRAMS", "QUANTILES", "RouteStats", "route_stats"]

QUANTILES = (0.5, 0.95, 0.99)
#: Request duration histograms (seconds), in order of preference.
HISTOGRAMS = ("http.server.request.duration", "obskit.request.duration")
_MAX_SERIES = 200


@dataclass
class RouteStats:
    """One route over a window: totals, and per slot count, errors and p50/p95/p99 in ms."""

    route: str
    times: list[float]
    step_s: float
    count: int = 0
    errors: int = 0
    quantiles_ms: tuple[float | None, ...] = (None, None, None)
    slot_counts: list[int] = field(default_factory=list)
    slot_errors: list[int] = field(default_factory=list)
    slot_quantiles_ms: list[tuple[float | None, ...]] = field(default_factory=list)

    @property
    def error_ratio(self) -> float:
        return self.errors / self.count if self.count else 0.0


def route_stats(store: Store, window: Window, chosen: str | None = None) -> list[RouteStats]:
    """Each route with requests in the window, busiest first. Percentiles per slot are read
    for the ``chosen`` route only (default: the busiest), the others' for the whole window."""
    if not store.has_table("metric_rollups"):
        return []
    slots = window.in_minutes()
    for name in HISTOGRAMS:
        routes = _read_counts(store, name, slots)
        if routes:
            break
    else:
        return []
    if chosen not in routes:
        chosen = max(routes, key=lambda r: sum(routes[r].counts))
    for route, data in routes.items():
        _read_buckets(store, name, slots, data, per_slot=route == chosen)
    out = [_stats(route, data, slots) for route, data in routes.items()]
    out = [stats for stats in out if stats.count]
    out.sort(key=lambda s: -s.count)
    return out


@dataclass
class _Route:
    counts: list[int]
    errors: list[int]
    series: list[str] = field(default_factory=list)
    bounds: list[float] = field(default_factory=list)
    total: dict[float, int] = field(default_factory=dict)
    per_slot: list[dict[float, int]] = field(default_factory=list)


def _read_counts(store: Store, name: str, window: Window) -> dict[str, _Route]:
    """Requests and failures per slot for each route, from the rollups (one row per slot)."""
    routes: dict[str, _Route] = {}
    for text in series_labels(store, name, _MAX_SERIES):
        labels = _labels(text)
        route = _route_of(labels)
        failed = _failed(labels)
        data = routes.get(route)
        if data is None:
            data = routes[route] = _Route([0] * window.slots, [0] * window.slots)
        data.series.append(text)
        for slot, count, layout in store.query(
            "SELECT CAST((minute - ?) / ? AS INTEGER), sum(count), max(bounds) "
            "FROM metric_rollups WHERE name = ? AND labels = ? AND minute >= ? AND minute < ? "
            "GROUP BY 1",
            (window.start, window.step, name, text, window.start, window.end),
        ):
            index = _clamp(slot, window.slots)
            data.counts[index] += count
            if failed:
                data.errors[index] += count
            if layout and not data.bounds:
                data.bounds = [float(b) for b in json.loads(layout)]
    return {route: data for route, data in routes.items() if sum(data.counts)}


def _read_buckets(store: Store, name: str, window: Window, data: _Route, per_slot: bool) -> None:
    """Bucket counts over the window, and per slot when ``per_slot``."""
    data.per_slot = [{} for _ in range(window.slots)] if per_slot else []
    for text in data.series:
        if per_slot:
            rows = store.query(
                "SELECT CAST((minute - ?) / ? AS INTEGER), le, sum(count) FROM metric_buckets "
                "WHERE name = ? AND labels = ? AND minute >= ? AND minute < ? GROUP BY 1, 2",
                (window.start, window.step, name, text, window.start, window.end),
            )
        else:
            rows = store.query(
                "SELECT 0, le, sum(count) FROM metric_buckets "
                "WHERE name = ? AND labels = ? AND minute >= ? AND minute < ? GROUP BY 2",
                (name, text, window.start, window.end),
            )
        for slot, le, count in rows:
            data.total[le] = data.total.get(le, 0) + count
            if per_slot:
                cell = data.per_slot[_clamp(slot, window.slots)]
                cell[le] = cell.get(le, 0) + count


def _stats(route: str, data: _Route, window: Window) -> RouteStats:
    return RouteStats(
        route,
        window.slot_times(),
        window.step,
        count=sum(data.counts),
        errors=sum(data.errors),
        quantiles_ms=_quantiles_ms(data.total, data.bounds),
        slot_counts=data.counts,
        slot_errors=data.errors,
        slot_quantiles_ms=[_quantiles_ms(cell, data.bounds) for cell in data.per_slot]
        or [(None,) * len(QUANTILES)] * window.slots,
    )


def _quantiles_ms(buckets: dict[float, int], layout: list[float]) -> tuple[float | None, ...]:
    """p50/p95/p99 in milliseconds from per-bucket counts keyed by upper bound (+Inf last)."""
    if not buckets:
        return (None,) * len(QUANTILES)
    bounds = sorted({*layout, *(le for le in buckets if le != math.inf)})
    counts = [buckets.get(le, 0) for le in bounds] + [buckets.get(math.inf, 0)]
    found = (histogram_quantile(q, bounds, counts) for q in QUANTILES)
    return tuple(None if value is None else value * 1000.0 for value in found)


def _route_of(labels: dict[str, Any]) -> str:
    if "http.route" in labels or "http.request.method" in labels:
        method = labels.get("http.request.method", "")
        return f"{method} {labels.get('http.route', '')}".strip() or "?"
    return str(labels.get("name") or labels.get("route") or "?")


def _failed(labels: dict[str, Any]) -> bool:
    """A failed request: OpenTelemetry's ``error.type``, or a 5xx status code."""
    if labels.get("error.type"):
        return True
    try:
        return int(labels.get("http.response.status_code", 0)) >= 500
    except (TypeError, ValueError):
        return False


def _labels(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _clamp(slot: int, slots: int) -> int:
    return min(slots - 1, max(0, slot))
