"""Range novelty: a value beyond everything seen so far (HTM's "spatial anomaly" in NAB)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from obskit.anomaly import _state
from obskit.anomaly._base import AnomalyScore, BaseDetector, number
from obskit.anomaly._state import ConfigError
from obskit.anomaly.ewma import resolution

__all__ = ["RangeNovelty"]


class RangeNovelty(BaseDetector):
    """Flags the first values that leave the range seen so far by more than a tolerance.

    The band is ``[low - t, high + t]`` with ``t = tolerance * (high - low)`` over every value
    seen; a value inside scores 0, one outside scores ``0.5 + 0.5 * excess / (high - low)``
    (capped at 1), so the default threshold of 0.5 flags any excursion. The range then grows
    to include it: the next, equal value is no longer new. Two floats of state.

    >>> from obskit.anomaly import RangeNovelty
    >>> detector = RangeNovelty(warmup=5)
    >>> any(result.is_anomaly for result in detector.update_many([3.0, 9.0, 5.0, 7.0, 4.0, 8.0]))
    False
    >>> detector.update(9.2).is_anomaly     # within 5 % of the 3..9 span (and now seen)
    False
    >>> result = detector.update(12.0)
    >>> result.is_anomaly, round(result.score, 2), result.upper
    (True, 0.7, 9.51)
    >>> detector.update(12.0).is_anomaly    # seen now
    False

    Works badly on series that trend (every new high is "new"), and it never forgets: one
    wild value widens the range for good. It sees only the value, never its context: pair it
    with :class:`~obskit.anomaly.ContextNovelty` or :class:`~obskit.anomaly.Seasonal`.
    """

    name = "range"
    __slots__ = ("_floor", "high", "low", "tolerance")

    def __init__(
        self,
        tolerance: float = 0.05,
        *,
        warmup: int = 30,
        threshold: float = 0.5,
        cooldown: int = 0,
        value_range: Sequence[float | None] | None = None,
    ) -> None:
        super().__init__(
            warmup=warmup, threshold=threshold, cooldown=cooldown, value_range=value_range
        )
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
            raise ConfigError(f"tolerance={tolerance!r}: use a number >= 0 (0.05 = 5 %)")
        if not 0 <= tolerance < 1e6:
            raise ConfigError(f"tolerance={tolerance!r}: use a number >= 0 (0.05 = 5 %)")
        self.tolerance = float(tolerance)
        self.low: float | None = None
        self.high: float | None = None
        self._floor = resolution(self.value_range)

    def _step(self, value: float, timestamp: float | None) -> AnomalyScore:
        low, high = self.low, self.high
        if low is None or high is None:
            self.low = self.high = value
            return AnomalyScore(0.0, False, value, timestamp=timestamp)
        span = high - low
        least = self._floor if self._floor > 0.0 else 1e-9 * max(abs(low), abs(high)) + 1e-12
        if span < least:
            span = least
        margin = self.tolerance * span
        lower, upper = low - margin, high + margin
        score = 0.0
        if value > upper:
            score = 0.5 + 0.5 * min(1.0, (value - upper) / span)
            self.high = value
        elif value < lower:
            score = 0.5 + 0.5 * min(1.0, (lower - value) / span)
            self.low = value
        elif value > high:
            self.high = value
        elif value < low:
            self.low = value
        return AnomalyScore(
            score, score >= self.threshold, value, (low + high) / 2, lower, upper, timestamp
        )

    def _explain(self, result: AnomalyScore) -> str:
        """Beyond the range seen so far."""
        value = result.value if result.value is not None else 0.0
        if result.upper is not None and value > result.upper:
            return f"{number(value)} is above anything seen before (up to {number(result.upper)})"
        lower = result.lower if result.lower is not None else value
        return f"{number(value)} is below anything seen before (down to {number(lower)})"

    def _config(self) -> dict[str, Any]:
        return {"tolerance": self.tolerance, **self._base_config()}

    def _data(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high}

    def _load(self, data: dict[str, Any]) -> None:
        self.low = _state.read_optional_float(data, "low")
        self.high = _state.read_optional_float(data, "high")
        if (self.low is None) != (self.high is None) or (
            self.low is not None and self.high is not None and self.low > self.high
        ):
            raise _state.StateError("range state: need both 'low' <= 'high', or neither")
