"""Exponentially weighted mean and variance: the cheapest useful detector."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from obskit.anomaly import _state
from obskit.anomaly._base import AnomalyScore, BaseDetector, check_fraction
from obskit.anomaly._scores import score_for_z, z_for_score
from obskit.anomaly._state import ConfigError

__all__ = ["EWMA", "resolution", "weight"]


class EWMA(BaseDetector):
    """Flags values far from an exponentially weighted mean, in units of the weighted spread.

    Each point is compared with the mean and standard deviation learned *before* it, then
    folded in with weight ``alpha`` (the last ``~1/alpha`` points matter most; the first
    ``1/alpha`` points are plainly averaged, so the start carries no bias). Two floats of state,
    about a microsecond of arithmetic per point.

    >>> from obskit.anomaly import EWMA
    >>> detector = EWMA(alpha=0.1, warmup=5)
    >>> for value in [10, 11, 10, 9, 10, 11, 10, 9, 10]:
    ...     result = detector.update(value)
    >>> result.is_anomaly, round(result.expected, 1)
    (False, 10.0)
    >>> spike = detector.update(25)
    >>> spike.is_anomaly, spike.score > 0.9, spike.upper < 25
    (True, True, True)

    Works badly on seasonal series (every daily peak looks like a spike: use
    :class:`~obskit.anomaly.Seasonal`), and after a level shift it keeps flagging until the
    mean has caught up (about ``3/alpha`` points). A long run of anomalies inflates the spread
    and hides the next ones for a while.
    """

    name = "ewma"
    __slots__ = ("_band_z", "_floor", "alpha", "mean", "var")

    def __init__(
        self,
        alpha: float = 0.05,
        *,
        warmup: int = 30,
        threshold: float = 0.5,
        cooldown: int = 0,
        value_range: Sequence[float | None] | None = None,
    ) -> None:
        super().__init__(
            warmup=warmup, threshold=threshold, cooldown=cooldown, value_range=value_range
        )
        self.alpha = check_fraction("alpha", alpha)
        if self.alpha == 0:
            raise ConfigError("alpha=0 never learns: use a weight in (0, 1], e.g. 0.05")
        self.mean: float | None = None
        self.var = 0.0
        self._floor = resolution(self.value_range)
        self._band_z = z_for_score(self.threshold)

    def _step(self, value: float, timestamp: float | None) -> AnomalyScore:
        mean = self.mean
        if mean is None:
            self.mean = value
            return self._result(0.0, value, None, None, timestamp)
        var = self.var
        scale = _spread(var, mean, self._floor)
        score = score_for_z((value - mean) / scale)
        self.mean, self.var = _fold(mean, var, value, weight(self.seen, self.alpha))
        return self._result(score, value, mean, self._band_z * scale, timestamp)

    def _config(self) -> dict[str, Any]:
        return {"alpha": self.alpha, **self._base_config()}

    def _data(self) -> dict[str, Any]:
        return {"mean": self.mean, "var": self.var}

    def _load(self, data: dict[str, Any]) -> None:
        self.mean = _state.read_optional_float(data, "mean")
        self.var = _state.read_float(data, "var")
        if self.var < 0:
            raise _state.StateError("ewma state: 'var' must not be negative")


def _fold(mean: float, var: float, value: float, alpha: float) -> tuple[float, float]:
    """One step of the exponentially weighted mean and variance (West, 1979)."""
    delta = value - mean
    step = alpha * delta
    return mean + step, (1.0 - alpha) * (var + delta * step)


def weight(seen: int, alpha: float) -> float:
    """``1/seen`` (a plain average) until that drops below ``alpha``: no start-up bias."""
    return 1.0 / seen if seen * alpha < 1.0 else alpha


def _spread(var: float, mean: float, floor: float) -> float:
    """The standard deviation, never below the resolution (a flat series has none)."""
    std = math.sqrt(var) if var > 0.0 else 0.0
    least = floor if floor > 0.0 else 1e-9 * abs(mean) + 1e-12
    return std if std > least else least


def resolution(value_range: tuple[float, float] | None) -> float:
    """The smallest spread worth scoring: 0.1 % of the hinted range (0 without a hint)."""
    if value_range is None:
        return 0.0
    return (value_range[1] - value_range[0]) * 1e-3
