"""Holt-Winters: level, trend and (optionally) a season, scored on the one-step forecast error."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from obskit.anomaly import _state
from obskit.anomaly._base import AnomalyScore, BaseDetector, check_fraction, check_int
from obskit.anomaly._scores import score_for_z, z_for_score
from obskit.anomaly.ewma import resolution

__all__ = ["HoltWinters"]


class HoltWinters(BaseDetector):
    """Forecasts each point from a smoothed level, trend and season; flags large misses.

    Double exponential smoothing (Holt) when ``season_length`` is ``None``; triple (additive
    Holt-Winters) when it is the number of points in one cycle. The forecast error is scored
    against its own exponentially weighted spread (weight ``error_alpha``). The first cycle
    (or first two points) only initialises the model. Unlike :class:`~obskit.anomaly.EWMA` it
    follows a steady trend without flagging it.

    >>> from obskit.anomaly import HoltWinters
    >>> detector = HoltWinters(alpha=0.5, beta=0.1, warmup=10)
    >>> ramp = [100.0 + 2.0 * i + (0.5 if i % 2 else -0.5) for i in range(60)]
    >>> any(result.is_anomaly for result in detector.update_many(ramp))   # a trend is normal
    False
    >>> round(detector.update(220.0).expected)                            # it forecast ~220
    220
    >>> detector.update(150.0).is_anomaly
    True

    Works badly when the season length is wrong or drifts (use
    :class:`~obskit.anomaly.Seasonal` with timestamps), and after a level shift the trend
    term overshoots for a while, which can flag the recovery too.
    """

    name = "holtwinters"
    __slots__ = (
        "_band_z",
        "_error_var",
        "_floor",
        "_initial",
        "_level",
        "_season",
        "_trend",
        "alpha",
        "beta",
        "error_alpha",
        "gamma",
        "season_length",
    )

    def __init__(
        self,
        alpha: float = 0.2,
        beta: float = 0.01,
        gamma: float = 0.1,
        season_length: int | None = None,
        *,
        error_alpha: float = 0.05,
        warmup: int = 30,
        threshold: float = 0.5,
        cooldown: int = 0,
        value_range: Sequence[float | None] | None = None,
    ) -> None:
        super().__init__(
            warmup=warmup, threshold=threshold, cooldown=cooldown, value_range=value_range
        )
        self.alpha = check_fraction("alpha", alpha)
        self.beta = check_fraction("beta", beta)
        self.gamma = check_fraction("gamma", gamma)
        self.error_alpha = check_fraction("error_alpha", error_alpha)
        self.season_length = (
            None if season_length is None else check_int("season_length", season_length, minimum=2)
        )
        self._initial: list[float] = []
        self._level = 0.0
        self._trend = 0.0
        self._season: list[float] = []
        self._error_var = 0.0
        self._floor = resolution(self.value_range)
        self._band_z = z_for_score(self.threshold)

    def _step(self, value: float, timestamp: float | None) -> AnomalyScore:
        if len(self._initial) < (self.season_length or 2):
            self._initialise(value)
            return self._result(0.0, value, None, None, timestamp)
        slot = (self.seen - 1) % self.season_length if self.season_length else 0
        seasonal = self._season[slot] if self.season_length else 0.0
        level, trend = self._level, self._trend
        forecast = level + trend + seasonal
        error = value - forecast
        variance = self._error_var
        std = math.sqrt(variance) if variance > 0.0 else 0.0
        least = self._floor if self._floor > 0.0 else 1e-9 * abs(forecast) + 1e-12
        scale = std if std > least else least
        score = score_for_z(error / scale)
        self._error_var = (1.0 - self.error_alpha) * (variance + self.error_alpha * error * error)
        new_level = self.alpha * (value - seasonal) + (1.0 - self.alpha) * (level + trend)
        self._trend = self.beta * (new_level - level) + (1.0 - self.beta) * trend
        self._level = new_level
        if self.season_length:
            self._season[slot] = self.gamma * (value - new_level) + (1.0 - self.gamma) * seasonal
        return self._result(score, value, forecast, self._band_z * scale, timestamp)

    def _initialise(self, value: float) -> None:
        """Collect the first cycle; then level = its mean, season = deviations from it."""
        self._initial.append(value)
        cycle = self._initial
        if self.season_length is None:
            if len(cycle) == 2:
                self._level, self._trend = cycle[1], cycle[1] - cycle[0]
            return
        if len(cycle) == self.season_length:
            self._level = math.fsum(cycle) / len(cycle)
            self._season = [item - self._level for item in cycle]

    def _config(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "gamma": self.gamma,
            "season_length": self.season_length,
            "error_alpha": self.error_alpha,
            **self._base_config(),
        }

    def _data(self) -> dict[str, Any]:
        return {
            "initial": list(self._initial),
            "level": self._level,
            "trend": self._trend,
            "season": list(self._season),
            "error_var": self._error_var,
        }

    def _load(self, data: dict[str, Any]) -> None:
        needed = self.season_length or 2
        self._initial = _state.read_float_list(data, "initial", max_length=needed)
        self._level = _state.read_float(data, "level")
        self._trend = _state.read_float(data, "trend")
        self._season = _state.read_float_list(data, "season", max_length=self.season_length or 0)
        self._error_var = _state.read_float(data, "error_var")
        if self.season_length and len(self._initial) == needed != len(self._season):
            raise _state.StateError("holtwinters state: 'season' must hold one cycle")
        if self._error_var < 0:
            raise _state.StateError("holtwinters state: 'error_var' must not be negative")
