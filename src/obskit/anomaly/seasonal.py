"""Contextual baseline: a separate mean and spread for each slot of a daily or weekly cycle."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from obskit.anomaly import _state
from obskit.anomaly._base import AnomalyScore, BaseDetector, check_fraction, check_int
from obskit.anomaly._scores import score_for_z, z_for_score
from obskit.anomaly._state import ConfigError
from obskit.anomaly.ewma import resolution

__all__ = ["DAY", "WEEK", "Seasonal"]

DAY = 86_400.0
WEEK = 7 * DAY


class Seasonal(BaseDetector):
    """Compares each value with what is usual *at this time of day* (or of the week).

    The cycle of ``period`` (seconds of timestamp; or points, when updates carry no timestamp)
    is cut into ``buckets`` slots; each slot keeps its own exponentially weighted mean and
    variance. So 3 a.m. traffic is compared with earlier nights, not with the afternoon peak,
    and a daily peak that fails to come is an anomaly. A slot scores nothing until it has seen
    ``min_count`` points.

    >>> from obskit.anomaly import Seasonal
    >>> detector = Seasonal(period=24, buckets=24, warmup=72)   # hourly points, no timestamps
    >>> day = [10.0] * 8 + [50.0] * 10 + [10.0] * 6             # busy from 8:00 to 18:00
    >>> any(result.is_anomaly for result in detector.update_many(day * 5))
    False
    >>> quiet_morning = detector.update_many([10.0] * 9)        # 8:00 stays idle: not usual
    >>> [result.is_anomaly for result in quiet_morning][-1], quiet_morning[-1].expected
    (True, 50.0)

    Works badly when the cycle drifts (daylight-saving shifts move every slot by one hour),
    when the slots are too fine for the sampling rate (each slot then learns slowly), and on
    series with no cycle at all (it is then an :class:`~obskit.anomaly.EWMA` with
    ``buckets`` times less data per estimate).
    """

    name = "seasonal"
    __slots__ = (
        "_band_z",
        "_counts",
        "_floor",
        "_means",
        "_vars",
        "alpha",
        "buckets",
        "min_count",
        "period",
    )

    def __init__(
        self,
        period: float = DAY,
        buckets: int = 48,
        alpha: float = 0.1,
        *,
        min_count: int = 3,
        warmup: int = 30,
        threshold: float = 0.5,
        cooldown: int = 0,
        value_range: Sequence[float | None] | None = None,
    ) -> None:
        super().__init__(
            warmup=warmup, threshold=threshold, cooldown=cooldown, value_range=value_range
        )
        if isinstance(period, bool) or not isinstance(period, (int, float)) or not period > 0:
            raise ConfigError(f"period={period!r}: use a positive number (86400 for a day)")
        if not math.isfinite(period):
            raise ConfigError(f"period={period!r}: use a finite number of seconds or points")
        self.period = float(period)
        self.buckets = check_int("buckets", buckets, minimum=1)
        self.alpha = check_fraction("alpha", alpha)
        self.min_count = check_int("min_count", min_count, minimum=1)
        self._means = [0.0] * self.buckets
        self._vars = [0.0] * self.buckets
        self._counts = [0] * self.buckets
        self._floor = resolution(self.value_range)
        self._band_z = z_for_score(self.threshold)

    def _step(self, value: float, timestamp: float | None) -> AnomalyScore:
        moment = float(self.seen - 1) if timestamp is None else timestamp
        slot = int(moment % self.period / self.period * self.buckets) % self.buckets
        count = self._counts[slot]
        mean = self._means[slot]
        var = self._vars[slot]
        self._counts[slot] = count + 1
        if count == 0:
            self._means[slot] = value
            return self._result(0.0, value, None, None, timestamp)
        # Plain averages until the slot has a few points, then exponential forgetting.
        weight = 1.0 / (count + 1) if count + 1 < 1.0 / self.alpha else self.alpha
        delta = value - mean
        self._means[slot] = mean + weight * delta
        self._vars[slot] = (1.0 - weight) * (var + weight * delta * delta)
        if count < self.min_count:
            return self._result(0.0, value, mean, None, timestamp)
        std = math.sqrt(var) if var > 0.0 else 0.0
        least = self._floor if self._floor > 0.0 else 1e-9 * abs(mean) + 1e-12
        scale = std if std > least else least
        return self._result(
            score_for_z(delta / scale), value, mean, self._band_z * scale, timestamp
        )

    def _explain(self, result: AnomalyScore) -> str:
        """Far from what is usual at this point of the cycle."""
        return super()._explain(result) + " for this time of day"

    def _config(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "buckets": self.buckets,
            "alpha": self.alpha,
            "min_count": self.min_count,
            **self._base_config(),
        }

    def _data(self) -> dict[str, Any]:
        return {"means": list(self._means), "vars": list(self._vars), "counts": self._counts}

    def _load(self, data: dict[str, Any]) -> None:
        means = _state.read_float_list(data, "means", max_length=self.buckets)
        variances = _state.read_float_list(data, "vars", max_length=self.buckets)
        counts = data.get("counts")
        if (
            len(means) != self.buckets
            or len(variances) != self.buckets
            or not isinstance(counts, list)
            or len(counts) != self.buckets
            or not all(type(count) is int and count >= 0 for count in counts)
            or any(var < 0 for var in variances)
        ):
            raise _state.StateError(f"seasonal state: need {self.buckets} slots of mean/var/count")
        self._means, self._vars, self._counts = means, variances, list(counts)
