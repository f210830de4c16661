"""Rolling z-score: the mean and standard deviation of the last ``window`` points."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

from obskit.anomaly import _state
from obskit.anomaly._base import MAX_MAGNITUDE, AnomalyScore, BaseDetector, check_int
from obskit.anomaly._scores import score_for_z, z_for_score
from obskit.anomaly.ewma import resolution

__all__ = ["RollingZScore"]

_numpy: ModuleType | None
try:  # the optional numpy extra vectorises backfills
    import numpy

    _numpy = numpy
except ImportError:  # pragma: no cover - exercised when numpy is absent
    _numpy = None

_VECTORISE_FROM = 256


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
        value_range: Sequence[float | None] | None = None,
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

    def update_many(
        self, values: Iterable[Any], timestamps: Iterable[Any] | None = None
    ) -> list[AnomalyScore]:
        """Score a backfill; with numpy installed, a long clean one has its statistics vectorised.

        The vectorised path computes every window's mean and variance from cumulative sums
        and gives the same results as :meth:`update` up to float rounding (1e-9 relative).
        Timestamps, short inputs and inputs holding anything but finite numbers take the
        point-by-point path.
        """
        if timestamps is None and _numpy is not None:
            if not isinstance(values, (list, tuple, _numpy.ndarray)):
                values = list(values)
            if len(values) >= _VECTORISE_FROM:
                results = self._backfill(values)
                if results is not None:
                    return results
        return super().update_many(values, timestamps)

    def _backfill(self, values: Any) -> list[AnomalyScore] | None:
        """The numpy path; ``None`` when the input is not all clean finite numbers."""
        np = _numpy
        if np is None:
            return None
        if isinstance(values, np.ndarray):
            if values.dtype.kind not in "fiu":
                return None
        elif not all(type(value) is float or type(value) is int for value in values):
            return None  # text, None, Decimals...: the point-by-point path sorts them out
        points = np.asarray(values, dtype=float)
        if points.ndim != 1 or not bool(np.all(np.abs(points) < MAX_MAGNITUDE)):
            return None
        past = np.asarray(self._window, dtype=float)
        series = np.concatenate([past, points])
        reference = float(np.median(series))  # centring keeps the sums of squares accurate
        centred = series - reference
        sums = np.concatenate([[0.0], np.cumsum(centred)])
        squares = np.concatenate([[0.0], np.cumsum(centred * centred)])
        index = np.arange(past.size, series.size)
        count = np.minimum(index, self.window)
        start = index - count
        total = sums[index] - sums[start]
        safe = np.maximum(count, 2)
        means = total / np.maximum(count, 1)
        variance = np.maximum((squares[index] - squares[start] - total * means) / (safe - 1), 0.0)
        means += reference
        least = self._floor if self._floor > 0.0 else 0.0
        floors = np.maximum(least, 1e-9 * np.abs(means) + 1e-12) if least == 0.0 else least
        scales = np.maximum(np.sqrt(variance), floors)
        scores = [score_for_z(z) for z in ((points - means) / scales).tolist()]
        early = int(np.count_nonzero(count < 2))  # no statistics yet: no opinion
        scores[:early] = [0.0] * early
        results = _gate_all(self, scores, points.tolist(), means.tolist(), scales.tolist())
        for result in results[:early]:
            result.expected = result.lower = result.upper = None
        self._window = deque(series[-self.window :].tolist())
        self._recompute()
        return results

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


def _gate_all(
    detector: RollingZScore,
    scores: list[float],
    values: list[float],
    means: list[float],
    scales: list[float],
) -> list[AnomalyScore]:
    """Results for a vectorised backfill, through the same gate as :meth:`update`."""
    threshold, band_z, gate = detector.threshold, detector._band_z, detector._gate
    results = []
    for score, value, mean, scale in zip(scores, values, means, scales, strict=True):
        detector.seen += 1
        half = band_z * scale
        result = AnomalyScore(score, score >= threshold, value, mean, mean - half, mean + half)
        results.append(gate(result))
    return results
