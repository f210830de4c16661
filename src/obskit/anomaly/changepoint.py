"""Change-point detection: a two-sided CUSUM that accumulates small, persistent deviations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from obskit.anomaly import _state
from obskit.anomaly._base import AnomalyScore, BaseDetector, check_fraction, number
from obskit.anomaly._scores import z_for_score
from obskit.anomaly._state import ConfigError
from obskit.anomaly.ewma import resolution, weight

__all__ = ["CUSUM"]


class CUSUM(BaseDetector):
    """Flags a shift of the mean that each point alone is too small to reveal.

    Each value becomes ``z``, its deviation from a slow exponentially weighted baseline (weight
    ``alpha``) in baseline standard deviations. Two cumulative sums collect ``z - drift`` (up)
    and ``-z - drift`` (down), never going below zero; a sum reaching ``limit`` is a change
    point. The score is ``threshold * sum / limit`` (capped at 1), so ``is_anomaly`` means a
    sum reached ``limit``; then both sums restart from zero and the baseline jumps to the new
    level, ready for the next change.

    >>> from obskit.anomaly import CUSUM
    >>> detector = CUSUM(warmup=20)
    >>> steady = [10.0 + (0.3 if i % 3 else -0.6) for i in range(200)]
    >>> any(result.is_anomaly for result in detector.update_many(steady))
    False
    >>> shifted = detector.update_many([10.6] * 30)     # +1.5 sigma: no single point stands out
    >>> first = next(i for i, result in enumerate(shifted) if result.is_anomaly)
    >>> 0 < first < 10
    True

    Works badly on seasonal or trending series (the cycle itself accumulates as drift) and on
    spiky ones: one huge spike can push a sum over the limit on its own. It reports the change
    some points after it began, by design.
    """

    name = "cusum"
    __slots__ = (
        "_band_z",
        "_down",
        "_floor",
        "_run",
        "_up",
        "alpha",
        "drift",
        "limit",
        "mean",
        "var",
    )

    def __init__(
        self,
        drift: float = 0.5,
        limit: float = 8.0,
        alpha: float = 0.01,
        *,
        warmup: int = 30,
        threshold: float = 0.5,
        cooldown: int = 0,
        value_range: Sequence[float | None] | None = None,
    ) -> None:
        super().__init__(
            warmup=warmup, threshold=threshold, cooldown=cooldown, value_range=value_range
        )
        for label, setting in (("drift", drift), ("limit", limit)):
            if isinstance(setting, bool) or not isinstance(setting, (int, float)):
                raise ConfigError(f"{label}={setting!r}: use a positive number")
            if not 0 < setting < math.inf:
                raise ConfigError(f"{label}={setting!r}: use a positive number")
        self.drift = float(drift)
        self.limit = float(limit)
        self.alpha = check_fraction("alpha", alpha)
        self.mean: float | None = None
        self.var = 0.0
        self._up = 0.0
        self._down = 0.0
        self._run = 0  # points since the baseline (re)started
        self._floor = resolution(self.value_range)
        self._band_z = z_for_score(self.threshold)

    def _step(self, value: float, timestamp: float | None) -> AnomalyScore:
        mean = self.mean
        self._run += 1
        if mean is None:
            self.mean = value
            return self._result(0.0, value, None, None, timestamp)
        var = self.var
        std = math.sqrt(var) if var > 0.0 else 0.0
        least = self._floor if self._floor > 0.0 else 1e-9 * abs(mean) + 1e-12
        scale = std if std > least else least
        z = (value - mean) / scale
        if z > 1e6:  # one absurd point must not poison the sums forever
            z = 1e6
        elif z < -1e6:
            z = -1e6
        if self.seen > self.warmup:
            up = max(0.0, self._up + z - self.drift)
            down = max(0.0, self._down - z - self.drift)
        else:  # the baseline is still settling: its early deviations mean nothing
            up = down = 0.0
        score = self.threshold * max(up, down) / self.limit
        delta = value - mean
        if self.seen > self.warmup and max(up, down) >= self.limit:
            up = down = 0.0  # a change point: restart at the new level
            self.mean = value
            self._run = 1
        else:
            step = weight(self._run, self.alpha)
            self.mean = mean + step * delta
            self.var = (1.0 - step) * (var + step * delta * delta)
        self._up, self._down = up, down
        return self._result(min(score, 1.0), value, mean, self._band_z * scale, timestamp)

    def _explain(self, result: AnomalyScore) -> str:
        """A sustained shift of the level."""
        value = result.value if result.value is not None else 0.0
        expected = result.expected if result.expected is not None else value
        side = "up" if value >= expected else "down"
        return (
            f"a sustained shift {side}: values kept {'above' if side == 'up' else 'below'} "
            f"the baseline {number(expected)} until the deviations added up to a change"
        )

    def _config(self) -> dict[str, Any]:
        return {
            "drift": self.drift,
            "limit": self.limit,
            "alpha": self.alpha,
            **self._base_config(),
        }

    def _data(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "var": self.var,
            "up": self._up,
            "down": self._down,
            "run": self._run,
        }

    def _load(self, data: dict[str, Any]) -> None:
        self.mean = _state.read_optional_float(data, "mean")
        self.var = _state.read_float(data, "var")
        self._up = _state.read_float(data, "up")
        self._down = _state.read_float(data, "down")
        self._run = _state.read_int(data, "run")
        if self.var < 0 or self._up < 0 or self._down < 0:
            raise _state.StateError("cusum state: 'var', 'up' and 'down' must not be negative")
