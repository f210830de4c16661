"""Robust z-score: the median and median absolute deviation (MAD) of a sliding window."""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence
from typing import Any

from obskit.anomaly import _state
from obskit.anomaly._base import AnomalyScore, BaseDetector, check_int
from obskit.anomaly._scores import score_for_z, z_for_score
from obskit.anomaly.ewma import resolution

__all__ = ["MedianMAD"]

#: MAD * 1.4826 estimates the standard deviation of normal data.
_MAD_TO_SIGMA = 1.4826


class MedianMAD(BaseDetector):
    """Flags values far from the window median, in units of the window's MAD.

    Half the window can be outliers before the median and MAD move, so a burst of spikes does
    not blind it the way it blinds :class:`~obskit.anomaly.RollingZScore`. The window is kept
    sorted (``bisect``) and the MAD is selected from it by binary search (no sorting per point), so
    each point costs O(log window) comparisons plus one list insert and delete.

    >>> from obskit.anomaly import MedianMAD
    >>> detector = MedianMAD(window=50, warmup=10)
    >>> noisy = [100, 102, 98, 101, 99, 300, 100, 103, 97, 100] * 3  # with an outlier each 10
    >>> [result.is_anomaly for result in detector.update_many(noisy)][-10:]
    [False, False, False, False, False, True, False, False, False, False]
    >>> result = detector.update(100.0)
    >>> result.expected, round(result.lower), round(result.upper)
    (100.0, 90, 110)

    Works badly when more than half the window is one value (a mostly idle counter: the MAD is
    0 and every blip is an infinite deviation; the range hint's resolution is then the floor),
    on seasonal series, and on trends steeper than the window can follow.
    """

    name = "mad"
    __slots__ = ("_band_z", "_floor", "_order", "_sorted", "window")

    def __init__(
        self,
        window: int = 200,
        *,
        warmup: int = 30,
        threshold: float = 0.5,
        cooldown: int = 0,
        value_range: Sequence[float | None] | None = None,
    ) -> None:
        super().__init__(
            warmup=warmup, threshold=threshold, cooldown=cooldown, value_range=value_range
        )
        self.window = check_int("window", window, minimum=3)
        self._order: deque[float] = deque()
        self._sorted: list[float] = []
        self._floor = resolution(self.value_range)
        self._band_z = z_for_score(self.threshold)

    def _step(self, value: float, timestamp: float | None) -> AnomalyScore:
        ordered = self._sorted
        if len(ordered) < 3:
            result = self._result(0.0, value, None, None, timestamp)
        else:
            median = _median(ordered)
            spread = _mad(ordered, median) * _MAD_TO_SIGMA
            least = self._floor if self._floor > 0.0 else 1e-9 * abs(median) + 1e-12
            scale = spread if spread > least else least
            score = score_for_z((value - median) / scale)
            result = self._result(score, value, median, self._band_z * scale, timestamp)
        self._order.append(value)
        bisect.insort(ordered, value)
        if len(self._order) > self.window:
            del ordered[bisect.bisect_left(ordered, self._order.popleft())]
        return result

    def _config(self) -> dict[str, Any]:
        return {"window": self.window, **self._base_config()}

    def _data(self) -> dict[str, Any]:
        return {"values": list(self._order)}

    def _load(self, data: dict[str, Any]) -> None:
        values = _state.read_float_list(data, "values", max_length=self.window)
        self._order = deque(values)
        self._sorted = sorted(values)


def _median(ordered: list[float]) -> float:
    """The median of a sorted list."""
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _mad(ordered: list[float], median: float) -> float:
    """The median of ``|x - median|`` over a sorted list, exactly, in O(log n).

    The deviations below the median, read leftwards, and those above it, read rightwards, are
    two sorted sequences; their merged k-th item is found by a binary search on how many come
    from the left one, without building either.
    """
    n = len(ordered)
    if n % 2:
        return _kth_deviation(ordered, median, (n + 1) // 2)
    lower = _kth_deviation(ordered, median, n // 2)
    return (lower + _kth_deviation(ordered, median, n // 2 + 1)) / 2


def _kth_deviation(ordered: list[float], median: float, k: int) -> float:
    """The k-th smallest (1-based) ``|x - median|``."""
    split = bisect.bisect_left(ordered, median)
    left, right = split, len(ordered) - split
    low, high = max(0, k - right), min(k, left)
    while low <= high:
        taken = (low + high) // 2  # deviations taken from the left side
        rest = k - taken
        left_last = median - ordered[split - taken] if taken > 0 else -math.inf
        left_next = median - ordered[split - 1 - taken] if taken < left else math.inf
        right_last = ordered[split + rest - 1] - median if rest > 0 else -math.inf
        right_next = ordered[split + rest] - median if rest < right else math.inf
        if left_last > right_next:
            high = taken - 1
        elif right_last > left_next:
            low = taken + 1
        else:
            return max(left_last, right_last)
    return 0.0  # unreachable for 1 <= k <= len(ordered)
