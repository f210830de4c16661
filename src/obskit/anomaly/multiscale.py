"""Multi-scale novelty: the default detector, four views of a series in one streaming pass."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

from obskit.anomaly import _state
from obskit.anomaly._base import AnomalyScore, BaseDetector, check_fraction, check_int, number
from obskit.anomaly._scores import score_for_z, z_for_score
from obskit.anomaly.context import bin_of, novel_contexts, widen
from obskit.anomaly.ewma import resolution
from obskit.anomaly.likelihood import rarity
from obskit.anomaly.seasonal import DAY

__all__ = ["FEATURES", "MultiScale"]

#: What each view is called in a flag's ``member`` and ``reason``.
FEATURES = ("time of day", "pattern", "slow pattern", "range")
_BINS = 50  # likelihood histogram bins per view
_BAND_Z = z_for_score(0.5)  # the band: one in 100,000 for this time of day
_PREFERENCE = (3, 0, 1, 2)  # range, time of day, pattern, slow pattern


class MultiScale(BaseDetector):
    """Novelty at two time scales, range novelty and a time-of-day baseline, each judged by rarity.

    Four views of every point, the ideas that carry the best entries of the Numenta Anomaly
    Benchmark (HTM's spatial and temporal novelty, CAD OSE's contexts of binned values, and a
    seasonal baseline none of them has):

    * **time of day**: the point's distance from the mean of its half-hour slot on earlier days,
      in that slot's standard deviations (as :class:`~obskit.anomaly.Seasonal`);
    * **pattern**: the fraction of the last ``order`` contexts of binned values never seen,
      averaged over ``smoothing`` points (as :class:`~obskit.anomaly.ContextNovelty`);
    * **slow pattern**: the same over the means of blocks of ``block`` points;
    * **range**: a value beyond everything seen so far (as :class:`~obskit.anomaly.RangeNovelty`).

    Each view's raw score is replaced by its rarity in that view's own history (the tail of a
    histogram of everything it scored before, as :class:`~obskit.anomaly.AnomalyLikelihood`),
    so every view calibrates itself on the series at hand; the score is the mean of the four.
    A flag names the view that weighed most (``member``) and says why in words (``reason``).

    >>> from obskit.anomaly import MultiScale
    >>> detector = MultiScale(value_range=(0, 100))
    >>> calm = [50.0 + (i % 7) for i in range(2000)]
    >>> any(result.is_anomaly for result in detector.update_many(calm))
    False
    >>> result = detector.update(97.0)
    >>> result.is_anomaly, result.member
    (True, 'range')
    >>> result.reason
    '97 is above anything seen before (50 to 56)'

    Works badly when the level drifts through the bins (every new bin is a new pattern) and, on
    its first few hundred points, the rarity of anything is capped (a young history cannot call a
    score rare). Without ``value_range`` the bins are cut over the first ``fit`` points and
    re-cut, forgetting the patterns, whenever a value leaves them. The time-of-day view needs
    timestamps (without them it counts points). Memory: ``capacity`` contexts per scale, 48
    slots, four histograms of 50 bins.
    """

    name = "multiscale"
    __slots__ = (
        "_block_count",
        "_block_history",
        "_block_known",
        "_block_sum",
        "_bounds",
        "_counts",
        "_extremes",
        "_fit_values",
        "_history",
        "_hists",
        "_known",
        "_means",
        "_per_second",
        "_pooled",
        "_range_before",
        "_rarest",
        "_recency",
        "_recent",
        "_recent_sum",
        "_resolution",
        "_seen_high",
        "_seen_low",
        "_vars",
        "alpha",
        "block",
        "buckets",
        "capacity",
        "fit",
        "levels",
        "margin",
        "order",
        "period",
        "rarest",
        "smoothing",
        "tolerance",
    )

    def __init__(
        self,
        *,
        levels: int = 8,
        order: int = 5,
        smoothing: int = 5,
        block: int = 16,
        period: float = DAY,
        buckets: int = 48,
        alpha: float = 0.1,
        tolerance: float = 0.05,
        rarest: float = 1e-4,
        fit: int = 400,
        margin: float = 0.2,
        capacity: int = 100_000,
        warmup: int = 0,
        threshold: float = 0.25,
        cooldown: int = 120,
        value_range: Sequence[float | None] | None = None,
    ) -> None:
        super().__init__(
            warmup=warmup, threshold=threshold, cooldown=cooldown, value_range=value_range
        )
        self.levels = check_int("levels", levels, minimum=2)
        self.order = check_int("order", order, minimum=1)
        if self.order > 15:
            raise _state.ConfigError(f"order={order!r}: use at most 15")
        self.smoothing = check_int("smoothing", smoothing, minimum=1)
        self.block = check_int("block", block, minimum=2)
        if isinstance(period, bool) or not isinstance(period, (int, float)):
            raise _state.ConfigError(f"period={period!r}: use seconds (86400 for a day)")
        if not (math.isfinite(period) and period > 0):
            raise _state.ConfigError(f"period={period!r}: use seconds (86400 for a day)")
        self.period = float(period)
        self.buckets = check_int("buckets", buckets, minimum=1)
        self.alpha = check_fraction("alpha", alpha)
        self.tolerance = check_fraction("tolerance", tolerance)
        if isinstance(rarest, bool) or not isinstance(rarest, (int, float)) or not 0 < rarest < 1:
            raise _state.ConfigError(f"rarest={rarest!r}: use a probability in (0, 1), e.g. 1e-4")
        self.rarest = float(rarest)
        self.fit = check_int("fit", fit, minimum=2)
        self.margin = check_fraction("margin", margin)
        self.capacity = check_int("capacity", capacity, minimum=self.order)
        self._means = [0.0] * self.buckets
        self._vars = [0.0] * self.buckets
        self._counts = [0] * self.buckets
        self._pooled = 0.0
        self._bounds: tuple[float, float] | None = self.value_range
        self._extremes: tuple[float, float] | None = None
        self._fit_values: list[float] = []
        self._history: list[int] = []
        self._known: dict[int, None] = {}
        self._recent: deque[float] = deque()
        self._recent_sum = 0.0
        self._block_sum = 0.0
        self._block_count = 0
        self._block_history: list[int] = []
        self._block_known: dict[int, None] = {}
        self._seen_low: float | None = None
        self._seen_high: float | None = None
        self._range_before = (0.0, 0.0)
        self._hists = [[0.0] * _BINS for _ in FEATURES]
        self._rarest = self.rarest
        self._per_second = self.buckets / self.period
        self._resolution = resolution(self.value_range)
        # Recency order only matters when the contexts can outgrow the capacity.
        self._recency = sum(self.levels**k for k in range(1, self.order + 1)) > self.capacity

    # -- scoring ------------------------------------------------------------------------------
    def _step(self, value: float, timestamp: float | None) -> AnomalyScore:
        seen = self.seen
        time_raw, expected, spread = self._time_of_day(value, timestamp, seen)
        low, high = self._seen_low, self._seen_high
        range_raw = 0.0  # within the range seen so far: the common case, no call
        if low is None or high is None or not low <= value <= high:
            range_raw = self._range(value)
            if seen <= 30:
                range_raw = 0.0
        pattern_raw, slow_raw = self._patterns(value)
        if seen <= 150:
            pattern_raw = 0.0
        if seen <= 10:
            slow_raw = 0.0
        hists, total, rarest = self._hists, float(seen - 1), self._rarest
        # Unrolled over the four views; a zero raw score is the common case (lowest bin).
        time_score = pattern_score = slow_score = range_score = 0.0
        if time_raw > 0.0:
            time_score = _rarity_then_count(hists[0], time_raw, total, rarest)
        else:
            hists[0][0] += 1.0
        if pattern_raw > 0.0:
            pattern_score = _rarity_then_count(hists[1], pattern_raw, total, rarest)
        else:
            hists[1][0] += 1.0
        if slow_raw > 0.0:
            slow_score = _rarity_then_count(hists[2], slow_raw, total, rarest)
        else:
            hists[2][0] += 1.0
        if range_raw > 0.0:
            range_score = _rarity_then_count(hists[3], range_raw, total, rarest)
        else:
            hists[3][0] += 1.0
        score = (time_score + pattern_score + slow_score + range_score) * 0.25
        result = self._result(score, value, expected, spread, timestamp)
        lower = result.lower
        if lower is not None and lower < 0.0 and (self._seen_low or 0.0) >= 0.0:
            result.lower = 0.0  # a series never seen below zero has no band there
        if result.is_anomaly:
            scores = [time_score, pattern_score, slow_score, range_score]
            self._name_view(result, scores, (time_raw, pattern_raw, slow_raw, range_raw))
        return result

    def _time_of_day(
        self, value: float, timestamp: float | None, seen: int
    ) -> tuple[float, float | None, float | None]:
        """Raw score, slot mean and band half-width; then fold the value into its slot."""
        moment = float(seen - 1) if timestamp is None else timestamp
        slot = int(moment % self.period * self._per_second) % self.buckets
        count = self._counts[slot]
        self._counts[slot] = count + 1
        mean = self._means[slot]
        if count == 0:
            self._means[slot] = value
            return 0.0, None, None
        var = self._vars[slot]
        weight = 1.0 / (count + 1) if (count + 1) * self.alpha < 1.0 else self.alpha
        delta = value - mean
        self._means[slot] = mean + weight * delta
        self._vars[slot] = (1.0 - weight) * (var + weight * delta * delta)
        # A young slot's spread is shrunk toward the spread pooled over all slots, weighing
        # as much as one memory of the slot (1 / alpha points): three points are not a spread.
        pooled = self._pooled
        self._pooled = pooled + (delta * delta - pooled) / (seen if seen * 0.01 < 1.0 else 100.0)
        if count < 3:
            return 0.0, mean, None
        prior = 1.0 / self.alpha if self.alpha > 0.0 else 1.0
        if count < prior:
            var = (count * var + prior * pooled) / (count + prior)
        std = math.sqrt(var) if var > 0.0 else 0.0
        least = self._resolution or 1e-9 * abs(mean) + 1e-12
        scale = std if std > least else least
        z = delta / scale
        # Below |z| = 0.48 the score (< 0.02) falls in the lowest rarity bin: skip erfc and log.
        raw = score_for_z(z) if seen > 30 and not -0.48 < z < 0.48 else 0.0
        return raw, mean, _BAND_Z * scale

    def _range(self, value: float) -> float:
        """Range novelty: how far beyond the range seen so far (then the range grows)."""
        low, high = self._seen_low, self._seen_high
        if low is None or high is None:
            self._seen_low = self._seen_high = value
            return 0.0
        if low <= value <= high:
            return 0.0
        span = high - low
        least = 1e-9 * max(abs(low), abs(high)) + 1e-12
        if span < least:
            span = least
        margin = self.tolerance * span
        raw = 0.0
        self._range_before = (low, high)
        if value > high:
            self._seen_high = value
            if value > high + margin:
                raw = 0.5 + 0.5 * min(1.0, (value - high - margin) / span)
        else:
            self._seen_low = value
            if value < low - margin:
                raw = 0.5 + 0.5 * min(1.0, (low - margin - value) / span)
        return raw

    def _patterns(self, value: float) -> tuple[float, float]:
        """Novelty of the point's context and, at the end of a block, of the block's context."""
        bounds = self._bounds
        if bounds is None:
            self._fit_values.append(value)
            if len(self._fit_values) < self.fit:
                return 0.0, 0.0
            values, self._fit_values = self._fit_values, []
            self._extremes = (min(values), max(values))
            self._bounds = bounds = widen(self._extremes, self.margin)
            for early in values:
                self._learn_point(early, bounds)
            return 0.0, 0.0
        escaped = 0.0
        extremes = self._extremes
        if extremes is not None:  # bins learned, not hinted: keep them covering what is seen
            if not bounds[0] <= value <= bounds[1]:
                self._extremes = (min(extremes[0], value), max(extremes[1], value))
                self._bounds = bounds = widen(self._extremes, self.margin)
                for memory in (self._known, self._block_known):
                    memory.clear()
                self._history.clear()
                self._block_history.clear()
                escaped = 1.0
            elif value < extremes[0]:
                self._extremes = (value, extremes[1])
            elif value > extremes[1]:
                self._extremes = (extremes[0], value)
        point = self._learn_point(value, bounds)
        if escaped:
            point = 1.0
        recent = self._recent
        recent.append(point)
        self._recent_sum += point
        if len(recent) > self.smoothing:
            self._recent_sum -= recent.popleft()
        smoothed = self._recent_sum / len(recent)
        slow = 0.0
        self._block_sum += value
        self._block_count += 1
        if self._block_count >= self.block:
            mean = self._block_sum / self._block_count
            self._block_sum, self._block_count = 0.0, 0
            level = bin_of(mean, bounds, self.levels)
            slow = novel_contexts(
                self._block_history,
                self._block_known,
                level,
                self.levels,
                self.order,
                self.capacity,
                recency=self._recency,
            )
        return (smoothed if smoothed > 0.0 else 0.0), slow

    def _learn_point(self, value: float, bounds: tuple[float, float]) -> float:
        level = bin_of(value, bounds, self.levels)
        return novel_contexts(
            self._history,
            self._known,
            level,
            self.levels,
            self.order,
            self.capacity,
            recency=self._recency,
        )

    # -- words ----------------------------------------------------------------------------
    def _explain(self, result: AnomalyScore) -> str:
        return result.reason or super()._explain(result)

    def _name_view(
        self, result: AnomalyScore, scores: list[float], raws: tuple[float, ...]
    ) -> None:
        """Name the view that weighed most and say, in words, what it saw."""
        index = max(_PREFERENCE, key=scores.__getitem__)  # ties: the plainest reason
        feature = FEATURES[index]
        value = result.value if result.value is not None else 0.0
        if feature == "range":
            low, high = self._range_before
            side = "above" if value >= high else "below"
            reason = (
                f"{number(value)} is {side} anything seen before ({number(low)} to {number(high)})"
            )
        elif feature == "time of day" and result.expected is not None:
            side = "above" if value >= result.expected else "below"
            usual = number(result.expected)
            reason = f"{number(value)} is far {side} the usual {usual} for this time of day"
        elif feature == "slow pattern":
            reason = (
                f"the means of the last blocks of {self.block} points move in a way not seen before"
            )
        else:
            share = round(raws[1] * self.order)
            reason = (
                f"the last {self.order} values follow a pattern not seen before "
                f"(about {share} of {self.order} of their contexts are new)"
            )
        result.member = feature
        result.reason = reason

    # -- state ----------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {
            "levels": self.levels,
            "order": self.order,
            "smoothing": self.smoothing,
            "block": self.block,
            "period": self.period,
            "buckets": self.buckets,
            "alpha": self.alpha,
            "tolerance": self.tolerance,
            "rarest": self.rarest,
            "fit": self.fit,
            "margin": self.margin,
            "capacity": self.capacity,
            **self._base_config(),
        }

    def _data(self) -> dict[str, Any]:
        return {
            "means": list(self._means),
            "vars": list(self._vars),
            "counts": list(self._counts),
            "pooled": self._pooled,
            "bounds": None if self._bounds is None else list(self._bounds),
            "extremes": None if self._extremes is None else list(self._extremes),
            "fit_values": list(self._fit_values),
            "history": list(self._history),
            "known": list(self._known),
            "recent": list(self._recent),
            "block_sum": self._block_sum,
            "block_count": self._block_count,
            "block_history": list(self._block_history),
            "block_known": list(self._block_known),
            "seen_low": self._seen_low,
            "seen_high": self._seen_high,
            "hists": [list(hist) for hist in self._hists],
        }

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
            raise _state.StateError(
                f"multiscale state: need {self.buckets} slots of mean/var/count"
            )
        self._means, self._vars, self._counts = means, variances, list(counts)
        self._pooled = _state.read_float(data, "pooled")
        if self._pooled < 0:
            raise _state.StateError("multiscale state: 'pooled' must not be negative")
        self._bounds = _read_pair(data, "bounds") or self.value_range
        self._extremes = _read_pair(data, "extremes")
        self._fit_values = _state.read_float_list(data, "fit_values", max_length=self.fit)
        self._history = _read_levels(data, "history", self.order, self.levels)
        self._block_history = _read_levels(data, "block_history", self.order, self.levels)
        self._known = _read_known(data, "known", self.capacity)
        self._block_known = _read_known(data, "block_known", self.capacity)
        self._recent = deque(_state.read_float_list(data, "recent", max_length=self.smoothing))
        self._recent_sum = math.fsum(self._recent)
        self._block_sum = _state.read_float(data, "block_sum")
        self._block_count = _state.read_int(data, "block_count")
        if self._block_count >= self.block:
            raise _state.StateError("multiscale state: 'block_count' must be below 'block'")
        self._seen_low = _state.read_optional_float(data, "seen_low")
        self._seen_high = _state.read_optional_float(data, "seen_high")
        hists = data.get("hists")
        if not isinstance(hists, list) or len(hists) != len(FEATURES):
            raise _state.StateError("multiscale state: 'hists' must hold one histogram per view")
        self._hists = [
            _state.read_float_list({"hist": hist}, "hist", max_length=_BINS) for hist in hists
        ]
        if any(len(hist) != _BINS or min(hist) < 0 for hist in self._hists):
            raise _state.StateError(f"multiscale state: each histogram needs {_BINS} counts >= 0")


def _rarity_then_count(hist: list[float], raw: float, total: float, rarest: float) -> float:
    """The rarity of ``raw`` among the scores counted so far; then count it."""
    slot = int(raw * _BINS)
    if slot >= _BINS:
        slot = _BINS - 1
    score = rarity(hist, slot, total, 1.0, rarest) if slot else 0.0
    hist[slot] += 1.0
    return score


def _read_pair(data: dict[str, Any], key: str) -> tuple[float, float] | None:
    if data.get(key) is None:
        return None
    pair = _state.read_float_list(data, key, max_length=2)
    if len(pair) != 2 or pair[0] > pair[1]:
        raise _state.StateError(f"multiscale state: {key!r} must be [low, high]")
    return (pair[0], pair[1])


def _read_levels(data: dict[str, Any], key: str, order: int, levels: int) -> list[int]:
    history = data.get(key)
    if not isinstance(history, list) or len(history) > order:
        raise _state.StateError(f"multiscale state: {key!r} must be at most {order} bins")
    if not all(type(level) is int and 0 <= level < levels for level in history):
        raise _state.StateError(f"multiscale state: {key!r} bins must be 0..{levels - 1}")
    return list(history)


def _read_known(data: dict[str, Any], key: str, capacity: int) -> dict[int, None]:
    known = data.get(key)
    if not isinstance(known, list) or len(known) > capacity:
        raise _state.StateError(f"multiscale state: {key!r} must be a list within capacity")
    if not all(type(item) is int and item >= 0 for item in known):
        raise _state.StateError(f"multiscale state: {key!r} must hold context keys")
    return dict.fromkeys(known)
