"""Sliding windows over one series: a ring of time buckets, bounded in memory.

A window of ``window_s`` seconds is ``size`` buckets of ``width = window_s / size`` seconds.
A point with timestamp ``t`` lands in bucket ``floor(t / width)``. At time ``now`` the window
holds the points of buckets ``floor(now / width) - size + 1`` to ``floor(now / width)``: it
slides by whole buckets and covers between ``window_s - width`` and ``window_s`` seconds. A
point older than the ring's span when it arrives is dropped (and counted as late).

Each bucket keeps count, sum, min, max, the latest point, and (when percentiles are asked for)
a log-bucket sketch (:mod:`obskit.alerts.sketch`). Window aggregates combine the buckets: sums
and counts exactly, percentiles within the sketch's relative accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from obskit.alerts.sketch import MIN_MAGNITUDE, add_counts, quantile_of

__all__ = ["AGGREGATIONS", "PERCENTILES", "ZERO_KEY", "Ring"]

#: Percentile aggregations and their quantile.
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
#: Every aggregation a rule may ask of a window.
AGGREGATIONS = ("avg", "sum", "min", "max", "count", "rate", "last", *PERCENTILES)
#: Sketch key of the zero bucket (positive keys are ``2k``, negative ``2k + 1``).
ZERO_KEY = 1 << 40
_INF = math.inf
_NEVER = -(1 << 62)


class Ring:
    """The last ``size`` buckets, ``width`` seconds each, of one series.

    >>> ring = Ring(width=10.0, size=6)               # a one-minute window
    >>> for t, v in [(0, 4.0), (15, 8.0), (42, 6.0)]:
    ...     _ = ring.add(t, v)
    >>> ring.value("avg", now=50), ring.value("max", now=50), ring.value("rate", now=50)
    (6.0, 8.0, 0.3)
    >>> ring.value("avg", now=65)                     # the bucket of t=0 left the window
    7.0
    >>> ring.value("avg", now=200) is None            # no data
    True
    """

    __slots__ = (
        "counts",
        "head",
        "highs",
        "inverse_log_gamma",
        "last_times",
        "lasts",
        "lows",
        "max_sketch_buckets",
        "relative_accuracy",
        "size",
        "sketches",
        "totals",
        "width",
    )

    def __init__(
        self,
        width: float,
        size: int,
        *,
        relative_accuracy: float | None = None,
        max_sketch_buckets: int = 2048,
    ) -> None:
        if width <= 0 or size < 1:
            raise ValueError("a ring needs width > 0 and size >= 1")
        self.width = width
        self.size = size
        self.head = _NEVER
        self.counts = [0] * size
        self.totals = [0.0] * size
        self.lows = [_INF] * size
        self.highs = [-_INF] * size
        self.lasts = [0.0] * size
        self.last_times = [-_INF] * size
        self.relative_accuracy = relative_accuracy
        self.max_sketch_buckets = max_sketch_buckets
        self.sketches: list[dict[int, int]] | None = None
        self.inverse_log_gamma = 0.0
        if relative_accuracy is not None:
            gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
            self.inverse_log_gamma = 1.0 / math.log(gamma)
            self.sketches = [{} for _ in range(size)]

    @property
    def window_s(self) -> float:
        return self.width * self.size

    # -- writing: the hot path ---------------------------------------------------------------

    def add(self, timestamp: float, value: float) -> bool:
        """Count a point; ``False`` when it is older than the ring's span (dropped)."""
        index = int(timestamp // self.width)
        if index > self.head:
            self._advance(index)
        elif index <= self.head - self.size:
            return False
        slot = index % self.size
        self.counts[slot] += 1
        self.totals[slot] += value
        if value < self.lows[slot]:
            self.lows[slot] = value
        if value > self.highs[slot]:
            self.highs[slot] = value
        if timestamp >= self.last_times[slot]:
            self.lasts[slot] = value
            self.last_times[slot] = timestamp
        sketches = self.sketches
        if sketches is not None:
            if value > MIN_MAGNITUDE:
                key = math.ceil(math.log(value) * self.inverse_log_gamma) << 1
            elif value < -MIN_MAGNITUDE:
                key = (math.ceil(math.log(-value) * self.inverse_log_gamma) << 1) | 1
            else:
                key = ZERO_KEY
            counts = sketches[slot]
            seen = counts.get(key)
            if seen is None:
                counts[key] = 1
                if len(counts) > self.max_sketch_buckets:
                    _collapse(counts, self.max_sketch_buckets)
            else:
                counts[key] = seen + 1
        return True

    def _advance(self, index: int) -> None:
        """Move the head to bucket ``index``, clearing the buckets it reuses."""
        size = self.size
        for i in range(max(self.head + 1, index - size + 1), index + 1):
            slot = i % size
            self.counts[slot] = 0
            self.totals[slot] = 0.0
            self.lows[slot] = _INF
            self.highs[slot] = -_INF
            self.last_times[slot] = -_INF
            if self.sketches is not None:
                self.sketches[slot] = {}
        self.head = index

    # -- reading -----------------------------------------------------------------------------

    def slots(self, now: float) -> Sequence[int] | None:
        """Slots in the window at ``now``: ``None`` means all of them (the usual case)."""
        current = int(now // self.width)
        head = self.head
        if current >= head:
            if current > head:
                self._advance(current)
            return None
        # Points stamped in the future of ``now`` exist: leave their buckets out.
        return [i % self.size for i in range(head - self.size + 1, current + 1)]

    def value(self, aggregation: str, now: float) -> float | None:
        """The window's ``aggregation`` at ``now``; ``None`` when it needs points and has none."""
        return _READERS[aggregation](self, self.slots(now))

    def count(self, slots: Sequence[int] | None) -> int:
        if slots is None:
            return sum(self.counts)
        counts = self.counts
        return sum([counts[s] for s in slots])

    def total(self, slots: Sequence[int] | None) -> float:
        if slots is None:
            return sum(self.totals)
        totals = self.totals
        return sum([totals[s] for s in slots])

    def low(self, slots: Sequence[int] | None) -> float | None:
        lows = self.lows
        found = min(lows) if slots is None else min([lows[s] for s in slots], default=_INF)
        return None if found == _INF else found

    def high(self, slots: Sequence[int] | None) -> float | None:
        highs = self.highs
        found = max(highs) if slots is None else max([highs[s] for s in slots], default=-_INF)
        return None if found == -_INF else found

    def average(self, slots: Sequence[int] | None) -> float | None:
        count = self.count(slots)
        return self.total(slots) / count if count else None

    def rate(self, slots: Sequence[int] | None) -> float:
        return self.total(slots) / (self.width * self.size)

    def last(self, slots: Sequence[int] | None) -> float | None:
        order = range(self.size) if slots is None else slots
        best, best_time = None, -_INF
        for slot in order:
            if self.counts[slot] and self.last_times[slot] >= best_time:
                best, best_time = self.lasts[slot], self.last_times[slot]
        return best

    def quantile(self, q: float, slots: Sequence[int] | None) -> float | None:
        """The ``q`` quantile of the window (``None`` without a sketch or without points)."""
        sketches = self.sketches
        if sketches is None or self.relative_accuracy is None:
            return None
        merged: dict[int, int] = {}
        for slot in range(self.size) if slots is None else slots:
            if sketches[slot]:
                add_counts(merged, sketches[slot])
        if not merged:
            return None
        zero = merged.pop(ZERO_KEY, 0)
        positive = {k >> 1: c for k, c in merged.items() if not k & 1}
        negative = {k >> 1: c for k, c in merged.items() if k & 1}
        accuracy = self.relative_accuracy
        return quantile_of(positive, negative, zero, q, (1 + accuracy) / (1 - accuracy))


def _collapse(counts: dict[int, int], limit: int) -> None:
    """Merge the lowest-magnitude positive buckets of one slot until within ``limit``."""
    positive = sorted(k for k in counts if k != ZERO_KEY and not k & 1)
    while len(counts) > limit and len(positive) >= 2:
        lowest = positive.pop(0)
        counts[positive[0]] += counts.pop(lowest)


def _quantile_reader(q: float) -> Callable[[Ring, Sequence[int] | None], float | None]:
    def read(ring: Ring, slots: Sequence[int] | None) -> float | None:
        return ring.quantile(q, slots)

    return read


_READERS: dict[str, Callable[[Ring, Sequence[int] | None], float | None]] = {
    "avg": Ring.average,
    "sum": Ring.total,
    "min": Ring.low,
    "max": Ring.high,
    "count": Ring.count,
    "rate": Ring.rate,
    "last": Ring.last,
    **{name: _quantile_reader(q) for name, q in PERCENTILES.items()},
}
