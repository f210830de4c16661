"""Sliding windows over one series: a ring of time buckets, bounded in memory.

A window of ``window_s`` seconds is ``size`` buckets of ``width = window_s / size`` seconds.
A point with timestamp ``t`` lands in bucket ``floor(t / width)``. At time ``now`` the window
holds the points of buckets ``floor(now / width) - size + 1`` to ``floor(now / width)``: it
slides by whole buckets and covers between ``window_s - width`` and ``window_s`` seconds. A
point older than the ring's span when it arrives is dropped (and counted as late).

Each bucket keeps count, sum, min, max, the latest point, and (when percentiles are asked for)
a log-bucket sketch (:mod:`obskit.alerts.sketch`), or, for a metric declared as a histogram,
counts per histogram bucket (``bounds``). Window aggregates combine the buckets: sums and counts
exactly, percentiles within the sketch's relative accuracy, or from the histogram's buckets with
Prometheus' ``histogram_quantile`` interpolation, so both engines answer alike.

:func:`read_rings` reads one aggregation over several series' rings at once (rules that
aggregate across label sets).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import NamedTuple

from obskit.alerts.sketch import MIN_MAGNITUDE, add_counts

__all__ = [
    "AGGREGATIONS",
    "KEY_OFFSET",
    "PERCENTILES",
    "BucketSpec",
    "Ring",
    "bucket_quantile",
    "read_rings",
]

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
        "bounds",
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
        bounds: Sequence[float] | None = None,
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
        #: histogram bucket upper bounds: percentiles from bucket counts, as Prometheus does
        self.bounds = tuple(sorted(bounds)) if bounds else None
        if relative_accuracy is not None:
            self.gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
            self.inverse_log_gamma = 1.0 / math.log(self.gamma)
        if relative_accuracy is not None or self.bounds is not None:
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
            if self.bounds is not None:  # the histogram bucket: value <= its upper bound
                key = bisect_left(self.bounds, value)
            elif value > MIN_MAGNITUDE:
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

    def latest(self, slots: Sequence[int] | None) -> tuple[float, float] | None:
        """(timestamp, value) of the window's latest point."""
        counts, size = self.counts, self.size
        order = (
            (i % size for i in range(self.head, self.head - size, -1))
            if slots is None
            else reversed(slots)
        )
        for slot in order:
            if counts[slot]:
                return self.last_times[slot], self.lasts[slot]
        return None

    def key_counts(self, slots: Sequence[int] | None) -> dict[int, int]:
        """Counts per sketch key (or histogram bucket) in the window (empty without either)."""
        sketches = self.sketches
        if sketches is None:
            return {}
        if slots is None:
            return self.window_counts
        counts: dict[int, int] = {}
        for slot in slots:
            add_counts(counts, sketches[slot])
        return counts

    def quantile(self, q: float, slots: Sequence[int] | None) -> float | None:
        """The ``q`` quantile of the window (``None`` without a sketch or without points)."""
        if self.sketches is None:
            return None
        return self.quantile_of(q, self.key_counts(slots))

    def quantile_of(self, q: float, counts: dict[int, int]) -> float | None:
        """The ``q`` quantile of ``counts`` (keys of this ring's sketch or buckets)."""
        if self.bounds is not None:
            return bucket_quantile(q, self.bounds, counts)
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


class BucketSpec(NamedTuple):
    """The shape of a ring whose percentiles come from histogram buckets (``bounds``); the
    store takes it wherever it takes a sketch-backed shape (both make their rings)."""

    width: float
    size: int
    bounds: tuple[float, ...]

    @property
    def window_s(self) -> float:
        return self.width * self.size

    def new_ring(self) -> Ring:
        return Ring(self.width, self.size, bounds=self.bounds)


def bucket_quantile(q: float, bounds: Sequence[float], counts: dict[int, int]) -> float | None:
    """Prometheus' ``histogram_quantile``: the ``q`` quantile of bucket ``counts`` (index ``i``
    counts values <= ``bounds[i]``, index ``len(bounds)`` the rest), interpolated linearly in
    its bucket; the first bucket starts at 0 (if its bound is positive), and a rank in the
    last (+Inf) bucket reads as the highest finite bound.

    >>> bucket_quantile(0.5, [0.1, 0.5, 1.0], {0: 10, 1: 10, 2: 20})
    0.5
    >>> bucket_quantile(0.95, [0.1, 0.5, 1.0], {0: 10, 1: 10, 2: 20})
    0.95
    >>> bucket_quantile(0.99, [0.1, 0.5, 1.0], {0: 1, 3: 9})
    1.0
    """
    total = sum(counts.values())
    if not total:
        return None
    if q < 0:
        return -_INF
    if q > 1:
        return _INF
    rank = q * total
    below = 0
    for index, upper in enumerate(bounds):
        count = counts.get(index, 0)
        if below + count >= rank:
            if index == 0 and upper <= 0:
                return upper
            start = 0.0 if index == 0 else bounds[index - 1]
            if count == 0:
                return upper
            return start + (upper - start) * ((rank - below) / count)
        below += count
    return bounds[-1] if bounds else None


def read_rings(
    aggregation: str, parts: Sequence[tuple[Ring, Sequence[int] | None]]
) -> float | None:
    """One ``aggregation`` over the windows of several series taken together.

    >>> a, b = Ring(width=10.0, size=6), Ring(width=10.0, size=6)
    >>> for ring, value in ((a, 1.0), (a, 3.0), (b, 8.0)):
    ...     _ = ring.add(5.0, value)
    >>> [read_rings(name, [(a, None), (b, None)]) for name in ("sum", "avg", "max", "count")]
    [12.0, 4.0, 8.0, 3]
    """
    if not parts:
        return None
    if aggregation in ("sum", "count", "rate"):
        return sum(_READERS[aggregation](ring, slots) or 0 for ring, slots in parts)
    if aggregation == "avg":
        count = sum(ring.count(slots) for ring, slots in parts)
        return sum(ring.total(slots) for ring, slots in parts) / count if count else None
    if aggregation in ("min", "max"):
        found = [v for v in (_READERS[aggregation](r, s) for r, s in parts) if v is not None]
        if not found:
            return None
        return min(found) if aggregation == "min" else max(found)
    if aggregation == "last":
        points = [p for p in (ring.latest(slots) for ring, slots in parts) if p is not None]
        return max(points)[1] if points else None
    counts: dict[int, int] = {}
    for ring, slots in parts:
        add_counts(counts, ring.key_counts(slots))
    return parts[0][0].quantile_of(PERCENTILES[aggregation], counts)


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
