"""A mergeable quantile sketch with a relative-error guarantee (DDSketch-style log buckets).

Why this one: window percentiles are computed by merging one sketch per time bucket, so the
sketch must merge exactly (adding counts per bucket) and stay small. Log-spaced buckets do both,
and their error is *relative*: a p99 latency of 812 ms comes back within ``relative_accuracy``
of 812 ms (1% by default), whatever the distribution (Masson, Rim and Lee, "DDSketch: a fast
and fully-mergeable quantile sketch with relative-error guarantees", VLDB 2019).

The guarantee, precisely: with ``n`` values, ``quantile(q)`` estimates the value of rank
``floor(q * (n - 1))`` (0-based) in sorted order, ``x``, within ``relative_accuracy * |x|``.
Values with ``|x| < MIN_MAGNITUDE`` count as zero (an absolute error below ``MIN_MAGNITUDE``).
It works badly only when more than ``max_buckets`` distinct buckets are needed (a range wider
than about 10^17 at 1%): the lowest buckets are then merged and the smallest quantiles lose
their guarantee; the high ones (p90, p99), which alerting uses, keep it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["MIN_MAGNITUDE", "QuantileSketch", "add_counts", "quantile_of"]

#: Magnitudes below this are counted in the zero bucket.
MIN_MAGNITUDE = 1e-9


class QuantileSketch:
    """Counts of values per log bucket; quantiles within ``relative_accuracy``.

    >>> sketch = QuantileSketch(relative_accuracy=0.01)
    >>> sketch.extend(range(1, 101))
    >>> round(sketch.quantile(0.5), 1), round(sketch.quantile(0.99), 1)
    (49.9, 98.5)
    >>> other = QuantileSketch(relative_accuracy=0.01)
    >>> other.add(1000.0)
    >>> sketch.merge(other)
    >>> sketch.count, round(sketch.quantile(1.0))
    (101, 1002)
    """

    __slots__ = (
        "count",
        "gamma",
        "inverse_log_gamma",
        "max_buckets",
        "negative",
        "positive",
        "relative_accuracy",
        "zero",
    )

    def __init__(self, relative_accuracy: float = 0.01, max_buckets: int = 2048) -> None:
        if not 0 < relative_accuracy < 1:
            raise ValueError("relative_accuracy must be between 0 and 1 (exclusive)")
        if max_buckets < 2:
            raise ValueError("max_buckets must be at least 2")
        self.relative_accuracy = relative_accuracy
        self.gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self.inverse_log_gamma = 1.0 / math.log(self.gamma)
        self.max_buckets = max_buckets
        self.positive: dict[int, int] = {}
        self.negative: dict[int, int] = {}
        self.zero = 0
        self.count = 0

    def add(self, value: float) -> None:
        """Count one value (finite)."""
        if value > MIN_MAGNITUDE:
            key = math.ceil(math.log(value) * self.inverse_log_gamma)
            self.positive[key] = self.positive.get(key, 0) + 1
        elif value < -MIN_MAGNITUDE:
            key = math.ceil(math.log(-value) * self.inverse_log_gamma)
            self.negative[key] = self.negative.get(key, 0) + 1
        else:
            self.zero += 1
        self.count += 1
        if len(self.positive) + len(self.negative) > self.max_buckets:
            self._collapse()

    def extend(self, values: Iterable[float]) -> None:
        for value in values:
            self.add(float(value))

    def merge(self, other: QuantileSketch) -> None:
        """Add ``other``'s counts into this sketch (both must share ``relative_accuracy``)."""
        add_counts(self.positive, other.positive)
        add_counts(self.negative, other.negative)
        self.zero += other.zero
        self.count += other.count
        if len(self.positive) + len(self.negative) > self.max_buckets:
            self._collapse()

    def quantile(self, q: float) -> float | None:
        """The estimated value of rank ``floor(q * (count - 1))``; ``None`` when empty."""
        if self.count == 0:
            return None
        return quantile_of(self.positive, self.negative, self.zero, q, self.gamma)

    def _collapse(self) -> None:
        """Merge the lowest buckets (most negative values first) until within ``max_buckets``."""
        while len(self.positive) + len(self.negative) > self.max_buckets:
            if len(self.negative) >= 2:
                *_, following, lowest = sorted(self.negative)
                self.negative[following] += self.negative.pop(lowest)
            elif len(self.positive) >= 2:
                lowest, following = sorted(self.positive)[:2]
                self.positive[following] += self.positive.pop(lowest)
            else:
                return


def add_counts(into: dict[int, int], counts: dict[int, int]) -> None:
    """Add per-bucket ``counts`` into ``into``."""
    get = into.get
    for key, count in counts.items():
        into[key] = get(key, 0) + count


def quantile_of(
    positive: dict[int, int], negative: dict[int, int], zero: int, q: float, gamma: float
) -> float:
    """The quantile over raw bucket counts (what :meth:`QuantileSketch.quantile` runs)."""
    total = sum(positive.values()) + sum(negative.values()) + zero
    rank = math.floor(min(max(q, 0.0), 1.0) * (total - 1))
    seen = 0
    for key in sorted(negative, reverse=True):  # most negative first
        seen += negative[key]
        if seen > rank:
            return -_bucket_value(key, gamma)
    seen += zero
    if seen > rank:
        return 0.0
    for key in sorted(positive):
        seen += positive[key]
        if seen > rank:
            return _bucket_value(key, gamma)
    return _bucket_value(max(positive), gamma) if positive else 0.0  # pragma: no cover


def _bucket_value(key: int, gamma: float) -> float:
    """The point of bucket ``(gamma^(key-1), gamma^key]`` with the least relative error."""
    return 2.0 * gamma**key / (gamma + 1.0)
