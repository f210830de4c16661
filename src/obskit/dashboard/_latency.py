"""Requests per route: rate, error ratio and latency percentiles per slot of a window.

The one place the dashboard reads request latency. It reads the root spans of requests
(bounded to the newest ``SPAN_SCAN`` in the window).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from obskit.dashboard._queries import Window
from obskit.store import Store

__all__ = ["QUANTILES", "RouteStats", "route_stats"]

QUANTILES = (0.5, 0.95, 0.99)
#: At most this many request spans are read for one page.
SPAN_SCAN = 50_000


@dataclass
class RouteStats:
    """One route over a window: totals, and per slot count, errors and p50/p95/p99 in ms."""

    route: str
    count: int = 0
    errors: int = 0
    quantiles_ms: tuple[float | None, ...] = (None, None, None)
    slot_counts: list[int] = field(default_factory=list)
    slot_errors: list[int] = field(default_factory=list)
    slot_quantiles_ms: list[tuple[float | None, ...]] = field(default_factory=list)

    @property
    def error_ratio(self) -> float:
        return self.errors / self.count if self.count else 0.0


def route_stats(store: Store, window: Window) -> list[RouteStats]:
    """Each route seen in the window, busiest first."""
    if not store.has_table("spans"):
        return []
    rows = store.query(
        "SELECT ts, name, duration_ms, status = 'error' FROM spans "
        "WHERE ts >= ? AND ts < ? AND parent_span_id IS NULL ORDER BY ts DESC LIMIT ?",
        (window.start, window.end, SPAN_SCAN),
    )
    slots = window.slots
    durations: dict[str, list[list[float]]] = {}
    errors: dict[str, list[int]] = {}
    for ts, name, duration_ms, failed in rows:
        route = name or "?"
        if route not in durations:
            durations[route] = [[] for _ in range(slots)]
            errors[route] = [0] * slots
        slot = window.slot_of(ts)
        durations[route][slot].append(duration_ms or 0.0)
        errors[route][slot] += 1 if failed else 0
    out = []
    for route, per_slot in durations.items():
        everything = [d for values in per_slot for d in values]
        stats = RouteStats(
            route,
            count=len(everything),
            errors=sum(errors[route]),
            quantiles_ms=_quantiles(everything),
            slot_counts=[len(values) for values in per_slot],
            slot_errors=errors[route],
            slot_quantiles_ms=[_quantiles(values) for values in per_slot],
        )
        out.append(stats)
    out.sort(key=lambda s: -s.count)
    return out


def _quantiles(values: list[float]) -> tuple[float | None, ...]:
    """Nearest-rank quantiles."""
    if not values:
        return (None,) * len(QUANTILES)
    ordered = sorted(values)
    last = len(ordered) - 1
    return tuple(ordered[min(last, int(q * len(ordered)))] for q in QUANTILES)
