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

from obskit.alerts.sketch import MIN_MAGNITUDE, add_counts

__all__ = ["AGGREGATIONS", "KEY_OFFSET", "PERCENTILES", "Ring"]

#: Percentile aggregations and their quantile.
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
#: Every aggregation a rule may ask of a window.
AGGREGATIONS = ("avg", "sum", "min", "max", "count", "rate", "last", *PERCENTILES)
#: Sketch keys sort like the values they count: ``KEY_OFFSET + k`` for a positive value in log
#: bucket ``k``, ``-(KEY_OFFSET + k)`` for a negative one, ``0`` for (near) zero.
KEY_OFFSET = 1 << 20
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
        "gamma",
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
        "window_counts",
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
        #: per bucket, and for the whole ring (kept in step), counts per sketch key
        self.sketches: list[dict[int, int]] | None = None
        self.window_counts: dict[int, int] = {}
        self.inverse_log_gamma = self.gamma = 0.0
        if relative_accuracy is not None:
            self.gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
            self.inverse_log_gamma = 1.0 / math.log(self.gamma)
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
                key = KEY_OFFSET + math.ceil(math.log(value) * self.inverse_log_gamma)
            elif value < -MIN_MAGNITUDE:
                key = -KEY_OFFSET - math.ceil(math.log(-value) * self.inverse_log_gamma)
            else:
                key = 0
            window = self.window_counts
            window[key] = window.get(key, 0) + 1
            counts = sketches[slot]
            seen = counts.get(key)
            if seen is None:
                counts[key] = 1
                if len(counts) > self.max_sketch_buckets:
                    self._collapse(counts)
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
            if self.sketches is not None and self.sketches[slot]:
                window = self.window_counts
                for key, count in self.sketches[slot].items():
                    left = window[key] - count
                    if left:
                        window[key] = left
                    else:
                        del window[key]
                self.sketches[slot] = {}
        self.head = index

    def _collapse(self, counts: dict[int, int]) -> None:
        """Merge one bucket's lowest sketch keys upwards until within ``max_sketch_buckets``."""
        window = self.window_counts
        keys = sorted(counts)
        while len(counts) > self.max_sketch_buckets:
            lowest, following = keys.pop(0), keys[0]
            moved = counts.pop(lowest)
            counts[following] += moved
            window[following] += moved
            left = window[lowest] - moved
            if left:
                window[lowest] = left
            else:
                del window[lowest]

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

    def count_rate(self, slots: Sequence[int] | None) -> float:
        """Points per second: ``rate`` of an observed metric (``rate(x_count[w])`` in PromQL)."""
        return self.count(slots) / (self.width * self.size)

    def last(self, slots: Sequence[int] | None) -> float | None:
        # Buckets are in time order: the newest non-empty one holds the latest point.
        counts, size = self.counts, self.size
        order = (
            (i % size for i in range(self.head, self.head - size, -1))
            if slots is None
            else reversed(slots)
        )
        for slot in order:
            if counts[slot]:
                return self.lasts[slot]
        return None

    def quantile(self, q: float, slots: Sequence[int] | None) -> float | None:
        """The ``q`` quantile of the window (``None`` without a sketch or without points)."""
        sketches = self.sketches
        if sketches is None:
            return None
        if slots is None:
            counts = self.window_counts
        else:
            counts = {}
            for slot in slots:
                add_counts(counts, sketches[slot])
        total = sum(counts.values())
        if not total:
            return None
        rank = math.floor(min(max(q, 0.0), 1.0) * (total - 1))
        keys = sorted(counts)
        if rank >= total // 2:  # walk from the nearer end: p90 to p99 from the top
            keys.reverse()
            rank = total - 1 - rank
        seen = 0
        for key in keys:
            seen += counts[key]
            if seen > rank:
                return self.key_value(key)
        return None  # pragma: no cover - the counts add up to total

    def key_value(self, key: int) -> float:
        """The value a sketch key stands for (the least relative error in its bucket)."""
        if key == 0:
            return 0.0
        magnitude = 2.0 * self.gamma ** (abs(key) - KEY_OFFSET) / (self.gamma + 1.0)
        return magnitude if key > 0 else -magnitude


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
