"""Anomaly likelihood: how rare a raw score is in the detector's own recent history."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from obskit.anomaly import _state
from obskit.anomaly._base import AnomalyScore, BaseDetector, check_int, detector_from_state
from obskit.anomaly._state import ConfigError

__all__ = ["AnomalyLikelihood", "rarity"]

_RESCALE_AT = 1e200


class AnomalyLikelihood(BaseDetector):
    """Wraps a detector and rescores it: how often did it score this high before?

    A raw score means different things on different series: 0.6 may be daily noise on a
    jittery metric and unheard of on a calm one. This post-processor (the idea behind HTM's
    anomaly likelihood in NAB, here with an empirical tail instead of a fitted Gaussian) keeps
    a histogram of the wrapped detector's raw scores in ``bins`` bins and reports the tail
    probability ``p`` of the current one, ``p = (weight at or above it + 1) / (total + 1)``, as
    ``score = log(p) / log(rarest)``, capped at 1: ``rarest=1e-4`` makes a score seen once in
    10,000 points score 1.0, and a score seen every other point about 0.075. With
    ``half_life`` (points) older scores fade, so the tail follows the recent history.

    >>> from obskit.anomaly import AnomalyLikelihood, EWMA
    >>> calm, jittery = AnomalyLikelihood(EWMA()), AnomalyLikelihood(EWMA())
    >>> _ = calm.update_many([10.0 + 0.01 * (i % 3) for i in range(300)])
    >>> _ = jittery.update_many([10.0 + (5.0 if i % 7 == 0 else 0.0) for i in range(300)])
    >>> calm.update(10.2).score > 0.5, jittery.update(15.0).score < 0.3
    (True, True)

    Works badly during its first few hundred points (a young history cannot call anything
    rare: the score is capped near ``log(1/seen) / log(rarest)``), and by design it gets used
    to a recurring anomaly: the tenth daily outage is no longer rare.
    """

    name = "likelihood"
    __slots__ = (
        "_growth",
        "_hist",
        "_recent",
        "_recent_sum",
        "_total",
        "_weight",
        "bins",
        "detector",
        "half_life",
        "rarest",
        "smoothing",
    )

    def __init__(
        self,
        detector: BaseDetector,
        *,
        bins: int = 50,
        rarest: float = 1e-4,
        half_life: int | None = None,
        smoothing: int = 1,
        warmup: int = 0,
        threshold: float = 0.5,
        cooldown: int = 0,
    ) -> None:
        super().__init__(warmup=warmup, threshold=threshold, cooldown=cooldown, value_range=None)
        if not isinstance(detector, BaseDetector):
            raise ConfigError(f"detector={detector!r}: wrap an obskit.anomaly detector")
        self.detector = detector
        self.bins = check_int("bins", bins, minimum=2)
        if isinstance(rarest, bool) or not isinstance(rarest, (int, float)) or not 0 < rarest < 1:
            raise ConfigError(f"rarest={rarest!r}: use a probability in (0, 1), e.g. 1e-4")
        self.rarest = float(rarest)
        self.half_life = None if half_life is None else check_int("half_life", half_life, minimum=1)
        self._growth = 1.0 if self.half_life is None else 2.0 ** (1.0 / self.half_life)
        self.smoothing = check_int("smoothing", smoothing, minimum=1)
        self._recent: deque[float] = deque()
        self._recent_sum = 0.0
        self._hist = [0.0] * self.bins
        self._total = 0.0
        self._weight = 1.0

    def _step(self, value: float, timestamp: float | None) -> AnomalyScore:
        inner = self.detector._accept(value, timestamp)
        raw = inner.score
        if self.smoothing > 1:
            raw = self._smooth(raw)
        slot = int(raw * self.bins)
        if slot >= self.bins:
            slot = self.bins - 1
        hist = self._hist
        score = rarity(hist, slot, self._total, self._weight, self.rarest)
        hist[slot] += self._weight
        self._total += self._weight
        self._weight *= self._growth  # newer points weigh more: older ones fade
        if self._weight > _RESCALE_AT:
            self._rescale()
        inner.score = score
        inner.is_anomaly = score >= self.threshold
        if inner.is_anomaly and inner.member is None:
            inner.member = self.detector.name
        return inner

    def _explain(self, result: AnomalyScore) -> str:
        """The wrapped detector's words, and how rare its score is here."""
        chance = self.rarest**result.score
        inner = result.reason or self.detector._explain(result)
        return f"{inner}; a score this high came up in {chance:.2%} of its past points"

    def _smooth(self, raw: float) -> float:
        """The mean of the last ``smoothing`` raw scores."""
        recent = self._recent
        recent.append(raw)
        self._recent_sum += raw
        if len(recent) > self.smoothing:
            self._recent_sum -= recent.popleft()
        mean = self._recent_sum / len(recent)
        return mean if mean > 0.0 else 0.0

    def _rescale(self) -> None:
        """Divide every weight by the current one before they overflow."""
        factor = 1.0 / self._weight
        self._hist = [count * factor for count in self._hist]
        self._total *= factor
        self._weight = 1.0

    @classmethod
    def _from_config(cls, config: dict[str, Any]) -> AnomalyLikelihood:
        settings = dict(config)
        settings["detector"] = detector_from_state(settings.get("detector"))
        return cls(**settings)

    def _config(self) -> dict[str, Any]:
        return {
            "detector": self.detector.state(),
            "bins": self.bins,
            "rarest": self.rarest,
            "half_life": self.half_life,
            "smoothing": self.smoothing,
            "warmup": self.warmup,
            "threshold": self.threshold,
            "cooldown": self.cooldown,
        }

    def _data(self) -> dict[str, Any]:
        return {
            "hist": list(self._hist),
            "total": self._total,
            "weight": self._weight,
            "recent": list(self._recent),
            "recent_sum": self._recent_sum,
        }

    def _load(self, data: dict[str, Any]) -> None:
        hist = _state.read_float_list(data, "hist", max_length=self.bins)
        total = _state.read_float(data, "total")
        weight = _state.read_float(data, "weight")
        if len(hist) != self.bins or min(hist) < 0 or total < 0 or not weight > 0:
            raise _state.StateError("likelihood state: 'hist', 'total' or 'weight' is damaged")
        self._hist, self._total, self._weight = hist, total, weight
        self._recent = deque(_state.read_float_list(data, "recent", max_length=self.smoothing))
        self._recent_sum = _state.read_float(data, "recent_sum")


def rarity(hist: list[float], slot: int, total: float, weight: float, rarest: float) -> float:
    """``log(p) / log(rarest)`` capped at 1, for the tail ``p`` of ``slot`` in ``hist``.

    ``p = (weight at or above slot + weight) / (total + weight)``: the current point counts as
    seen once, so nothing is impossible. The lowest slot has ``p = 1``: score 0, no sum.
    """
    if slot == 0:
        return 0.0
    tail = (sum(hist[slot:]) + weight) / (total + weight)
    if tail >= 1.0:
        return 0.0
    score = math.log(tail) / math.log(rarest)
    return score if score < 1.0 else 1.0
