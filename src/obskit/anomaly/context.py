"""Context novelty: has this short sequence of (coarsely quantised) values ever happened before?"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from obskit.anomaly import _state
from obskit.anomaly._base import AnomalyScore, BaseDetector, check_fraction, check_int
from obskit.anomaly._state import ConfigError

__all__ = ["ContextNovelty", "bin_of", "novel_contexts", "widen"]

_ORDER_BITS = 4  # a context key is (code << 4) | length


class ContextNovelty(BaseDetector):
    """Flags values whose recent context (the last few values, coarsely binned) is new.

    The idea of the best non-HTM entry of the Numenta Anomaly Benchmark (CAD OSE, Smirnov
    2016), kept to its core: values are cut into ``levels`` bins across the value range, and the
    last 1, 2, ..., ``order`` bins form contexts. The score is the fraction of those contexts
    never seen before: 0.2 (of 5) for a familiar value arriving in an unfamiliar order, 1.0 for
    a value in a bin never visited. It learns every context at once, so a pattern is an anomaly
    only the first time: no training, and it never tires of a repeated incident.

    The bins need the value range: the ``value_range`` hint when given (values outside it fall
    into the end bins); otherwise the range of the first ``fit`` values, widened by ``margin``
    of their span on each side. Without a hint, a later value outside the bins re-cuts them over
    everything seen so far (widened again) and scores 1.0: the contexts learned on the old bins
    are forgotten and relearned. With ``scale > 1`` the detector bins the mean of each block of
    ``scale`` points instead, to see slower patterns (it scores once per block). At most
    ``capacity`` contexts are remembered; the least recently seen are forgotten first.

    >>> from obskit.anomaly import ContextNovelty
    >>> detector = ContextNovelty(levels=4, order=3, warmup=20, value_range=(0, 100))
    >>> wave = [10.0, 40.0, 90.0, 40.0] * 10               # up, down, up, down
    >>> any(result.is_anomaly for result in detector.update_many(wave))
    False
    >>> detector.update(10.0).score                         # the wave went on as usual
    0.0
    >>> detector.update(90.0).score                         # skipped a step: 2 of 3 contexts new
    0.6666666666666666

    Works badly on series whose level drifts through the bins (every new bin is novel) or,
    without a hint, keeps setting new extremes (each one re-cuts the bins and restarts the
    learning); after one wild value the bins are wide and the usual values share few of them.
    It is blind to noise that is fine compared with the bins and flags noise that is coarse
    compared with them until every context has been seen. Its memory is ``capacity`` contexts,
    not a fixed few floats.
    """

    name = "context"
    __slots__ = (
        "_block_count",
        "_block_sum",
        "_bounds",
        "_extremes",
        "_fit_values",
        "_history",
        "_known",
        "capacity",
        "fit",
        "levels",
        "margin",
        "order",
        "scale",
    )

    def __init__(
        self,
        levels: int = 8,
        order: int = 5,
        *,
        scale: int = 1,
        fit: int = 400,
        margin: float = 0.2,
        capacity: int = 100_000,
        warmup: int = 150,
        threshold: float = 0.8,
        cooldown: int = 0,
        value_range: Sequence[float | None] | None = None,
    ) -> None:
        super().__init__(
            warmup=warmup, threshold=threshold, cooldown=cooldown, value_range=value_range
        )
        self.levels = check_int("levels", levels, minimum=2)
        self.order = check_int("order", order, minimum=1)
        if self.order >= 1 << _ORDER_BITS:
            raise ConfigError(f"order={order!r}: use at most {(1 << _ORDER_BITS) - 1}")
        self.scale = check_int("scale", scale, minimum=1)
        self.fit = check_int("fit", fit, minimum=2)
        self.margin = check_fraction("margin", margin)
        self.capacity = check_int("capacity", capacity, minimum=self.order)
        self._bounds: tuple[float, float] | None = self.value_range
        self._fit_values: list[float] = []
        self._history: list[int] = []
        self._known: dict[int, None] = {}
        self._block_sum = 0.0
        self._block_count = 0
        self._extremes: tuple[float, float] | None = None  # min and max seen, without a hint

    def _step(self, value: float, timestamp: float | None) -> AnomalyScore:
        if self.scale > 1:
            self._block_sum += value
            self._block_count += 1
            if self._block_count < self.scale:
                return AnomalyScore(0.0, False, value, timestamp=timestamp)
            point = self._block_sum / self._block_count
            self._block_sum, self._block_count = 0.0, 0
        else:
            point = value
        bounds = self._bounds
        if bounds is None:
            self._fit_values.append(point)
            if len(self._fit_values) >= self.fit:
                self._extremes = (min(self._fit_values), max(self._fit_values))
                self._bounds = widen(self._extremes, self.margin)
                for early in self._fit_values:
                    self._learn(early)
                self._fit_values = []
            return AnomalyScore(0.0, False, value, timestamp=timestamp)
        extremes = self._extremes
        score = -1.0
        if extremes is not None:  # bins learned, not hinted: keep them covering what is seen
            if not bounds[0] <= point <= bounds[1]:
                self._refit(point)
                score = 1.0  # outside every bin there was: new in every context
            elif point < extremes[0]:
                self._extremes = (point, extremes[1])
            elif point > extremes[1]:
                self._extremes = (extremes[0], point)
        score = max(score, self._learn(point))
        return AnomalyScore(score, score >= self.threshold, value, timestamp=timestamp)

    def _explain(self, result: AnomalyScore) -> str:
        """A pattern of binned values not seen before."""
        new = round(result.score * self.order) if result.score <= 1.0 else self.order
        values = "values" if self.scale == 1 else f"means of {self.scale}-point blocks"
        return (
            f"the last {self.order} {values} follow a pattern not seen before "
            f"({new} of its {self.order} contexts new)"
        )

    def _refit(self, point: float) -> None:
        """New bins over everything seen; what was learned on the old bins no longer applies."""
        low, high = self._extremes or (point, point)
        self._extremes = (min(low, point), max(high, point))
        self._bounds = widen(self._extremes, self.margin)
        self._known.clear()
        self._history.clear()

    def _learn(self, point: float) -> float:
        """Bin the point, count the contexts ending here that are new, then remember them all."""
        levels = self.levels
        level = bin_of(point, self._bounds or (0.0, 0.0), levels)
        return novel_contexts(self._history, self._known, level, levels, self.order, self.capacity)

    def _config(self) -> dict[str, Any]:
        return {
            "levels": self.levels,
            "order": self.order,
            "scale": self.scale,
            "fit": self.fit,
            "margin": self.margin,
            "capacity": self.capacity,
            **self._base_config(),
        }

    def _data(self) -> dict[str, Any]:
        return {
            "bounds": None if self._bounds is None else list(self._bounds),
            "extremes": None if self._extremes is None else list(self._extremes),
            "fit_values": list(self._fit_values),
            "history": list(self._history),
            "known": list(self._known),
            "block_sum": self._block_sum,
            "block_count": self._block_count,
        }

    def _load(self, data: dict[str, Any]) -> None:
        bounds = data.get("bounds")
        if bounds is not None:
            low, high = _state.read_float_list(data, "bounds", max_length=2)
            if low > high:
                raise _state.StateError("context state: 'bounds' must be [low, high]")
            self._bounds = (low, high)
        elif self.value_range is None:
            self._bounds = None
        self._extremes = None
        if data.get("extremes") is not None:
            low, high = _state.read_float_list(data, "extremes", max_length=2)
            if low > high or self.value_range is not None:
                raise _state.StateError("context state: 'extremes' must be [low, high], no hint")
            self._extremes = (low, high)
        self._fit_values = _state.read_float_list(data, "fit_values", max_length=self.fit)
        history, known = data.get("history"), data.get("known")
        if not isinstance(history, list) or len(history) > self.order:
            raise _state.StateError(f"context state: 'history' must be at most {self.order} bins")
        if not all(type(level) is int and 0 <= level < self.levels for level in history):
            raise _state.StateError(f"context state: 'history' bins must be 0..{self.levels - 1}")
        if not isinstance(known, list) or len(known) > self.capacity:
            raise _state.StateError("context state: 'known' must be a list within capacity")
        if not all(type(key) is int and key >= 0 for key in known):
            raise _state.StateError("context state: 'known' must hold context keys")
        self._history = list(history)
        self._known = dict.fromkeys(known)
        self._block_sum = _state.read_float(data, "block_sum")
        self._block_count = _state.read_int(data, "block_count")
        if self._block_count >= self.scale:
            raise _state.StateError("context state: 'block_count' must be below 'scale'")


def bin_of(point: float, bounds: tuple[float, float], levels: int) -> int:
    """The bin (0 .. levels - 1) of ``point`` when ``bounds`` are cut into ``levels``."""
    low, high = bounds
    span = high - low
    level = int((point - low) / span * levels) if span > 0.0 else 0
    return 0 if level < 0 else levels - 1 if level >= levels else level


def novel_contexts(
    history: list[int],
    known: dict[int, None],
    level: int,
    levels: int,
    order: int,
    capacity: int,
    *,
    recency: bool = True,
) -> float:
    """Append ``level``; the fraction of the ``order`` contexts ending here never seen; learn them.

    ``known`` is trimmed to ``capacity``, least recently seen first; ``recency=False`` skips
    keeping that order, for callers whose contexts cannot outgrow the capacity.
    """
    history.append(level)
    if len(history) > order:
        del history[0]
    code = 0
    new = 0
    for length, past in enumerate(reversed(history), 1):
        code = code * levels + past
        key = (code << _ORDER_BITS) | length
        if key in known:
            if recency:
                del known[key]  # re-insert: most recently seen last
                known[key] = None
        else:
            new += 1
            known[key] = None
    while len(known) > capacity:
        del known[next(iter(known))]
    return new / order


def widen(values: Sequence[float], margin: float) -> tuple[float, float]:
    """The range of ``values`` plus ``margin`` of its span on each side."""
    low, high = min(values), max(values)
    span = high - low or abs(high) * 0.1 or 1.0
    return low - margin * span, high + margin * span
