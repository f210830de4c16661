"""Rolling z-score: the mean and standard deviation of the last ``window`` points."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

from obskit.anomaly import _state
from obskit.anomaly._base import AnomalyScore, BaseDetector, check_int
from obskit.anomaly._scores import score_for_z, z_for_score
from obskit.anomaly.ewma import resolution

__all__ = ["RollingZScore"]


class RollingZScore(BaseDetector):
    """Flags values far from the mean of a sliding window, in window standard deviations.

    The textbook detector, and NAB's ``windowedGaussian``: every point in the window weighs the
    same, so an old spike leaves the statistics abruptly, ``window`` points later. Memory is
    the window itself.

    >>> from obskit.anomaly import RollingZScore
    >>> detector = RollingZScore(window=20, warmup=10)
    >>> results = detector.update_many([50.0, 51.0, 49.0, 50.5, 49.5] * 4)
    >>> any(result.is_anomaly for result in results)
    False
    >>> drop = detector.update(20.0)
    >>> drop.is_anomaly, round(drop.expected, 1), drop.lower > 20
    (True, 50.0, True)

    Works badly on seasonal series and on heavy-tailed ones (one outlier inflates the standard
    deviation of the whole window: :class:`~obskit.anomaly.MedianMAD` is robust to that), and it
    forgets a level shift only once the window has slid past it.
    """

    name = "zscore"
    __slots__ = ("_band_z", "_floor", "_m2", "_mean", "_since_exact", "_window", "window")

    def __init__(
        self,
        window: int = 100,
        *,
        warmup: int = 30,
        threshold: float = 0.5,
        cooldown: int = 0,
        value_range: Sequence[float] | None = None,
    ) -> None:
        super().__init__(
            warmup=warmup, threshold=threshold, cooldown=cooldown, value_range=value_range
        )
        self.window = check_int("window", window, minimum=2)
        self._window: deque[float] = deque()
        self._mean = 0.0
        self._m2 = 0.0
        self._since_exact = 0
        self._floor = resolution(self.value_range)
        self._band_z = z_for_score(self.threshold)

    def _step(self, value: float, timestamp: float | None) -> AnomalyScore:
        window = self._window
        count = len(window)
        if count < 2:
            result = self._result(0.0, value, None, None, timestamp)
        else:
            mean = self._mean
            scale = self._scale(count)
            result = self._result(
                score_for_z((value - mean) / scale), value, mean, self._band_z * scale, timestamp
            )
        self._push(value)
        return result

    def _scale(self, count: int) -> float:
        """The window's sample standard deviation, never below the resolution."""
        var = self._m2 / (count - 1)
        std = math.sqrt(var) if var > 0.0 else 0.0
        least = self._floor if self._floor > 0.0 else 1e-9 * abs(self._mean) + 1e-12
        return std if std > least else least

    def _push(self, value: float) -> None:
        """Add a point and drop the oldest (Welford's update, run forwards and backwards)."""
        window = self._window
        window.append(value)
        count = len(window)
        delta = value - self._mean
        self._mean += delta / count
        self._m2 += delta * (value - self._mean)
        if count > self.window:
            old = window.popleft()
            count -= 1
            delta = old - self._mean
            self._mean -= delta / count
            self._m2 -= delta * (old - self._mean)
            self._since_exact += 1
            if self._since_exact >= self.window or self._m2 < 0.0:
                self._recompute()

    def _recompute(self) -> None:
        """Exact mean and sum of squares, so rounding errors cannot pile up."""
        window = self._window
        self._mean = mean = math.fsum(window) / len(window)
        self._m2 = math.fsum((item - mean) ** 2 for item in window)
        self._since_exact = 0

    def _config(self) -> dict[str, Any]:
        return {"window": self.window, **self._base_config()}

    def _data(self) -> dict[str, Any]:
        return {
            "values": list(self._window),
            "mean": self._mean,
            "m2": self._m2,
            "since_exact": self._since_exact,
        }

    def _load(self, data: dict[str, Any]) -> None:
        self._window = deque(_state.read_float_list(data, "values", max_length=self.window))
        self._mean = _state.read_float(data, "mean")
        self._m2 = _state.read_float(data, "m2")
        self._since_exact = _state.read_int(data, "since_exact")
