"""What ``run.py`` scores: each obskit detector as a *family* of candidate configurations.

A plain detector is a family of one (its defaults; only NAB's threshold is chosen on data). The
default detector appears twice: as shipped (``default``), and as a grid over its global
parameters (``default-grid``), so that the cross-validation shows what choosing them on three
categories is worth on the fourth. The alert rationing (threshold and cooldown of the gate)
does not change what the detector learns, so it is applied after the run (:func:`gate`, the
same rule as :meth:`obskit.anomaly.BaseDetector._gate`): one detector run serves every gate.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from obskit import anomaly

__all__ = ["COOLDOWN", "FAMILIES", "Candidate", "Family", "gate"]

Hint = tuple[float, float] | None
Factory = Callable[[Hint], Any]

#: The default's incident rationing, given to the single detectors too so that the rows compare
#: what each detector sees, not how often it repeats itself.
COOLDOWN = 120


@dataclass(frozen=True, slots=True)
class Candidate:
    """One configuration: the detector run (``key`` names it for the cache) and the gate."""

    key: str
    factory: Factory
    threshold: float | None = None  # the gate, applied after the run (None: the detector's own)
    cooldown: int = 0


@dataclass(frozen=True, slots=True)
class Family:
    """A detector's candidates, the shipped one first."""

    candidates: dict[str, Candidate]

    @property
    def shipped(self) -> str:
        return next(iter(self.candidates))


def gate(scores: Sequence[float], threshold: float, cooldown: int) -> list[float]:
    """Incident rationing: after a flag, silent until calm for as long as the incident lasted.

    The same rule as the detectors' own (at least ``cooldown`` points of calm, more when the
    incident went on longer); a test holds the two together.
    """
    out = []
    quiet = opened = 0
    for index, score in enumerate(scores):
        if quiet:
            if score >= threshold:
                quiet = max(cooldown, index - opened)
            else:
                quiet -= 1
            out.append(0.0)
        else:
            if score >= threshold:
                quiet, opened = cooldown, index
            out.append(score)
    return out


def _single(factory: Callable[..., Any]) -> Family:
    return Family(
        {
            "defaults": Candidate(
                factory.__name__, lambda hint: factory(cooldown=COOLDOWN, value_range=hint)
            )
        }
    )


#: The default's grid: the shipped values first; every other combination is a candidate.
DEFAULT_GRID = {
    "smoothing": (5, 3, 8),
    "block": (16, 8, 32),
    "threshold": (0.25, 0.2, 0.3),
    "cooldown": (COOLDOWN, 60, 240),
}


def _default_family(grid: bool) -> Family:
    """The default as shipped (grid=False), or with its grid as candidates (grid=True)."""
    candidates: dict[str, Candidate] = {}
    values = DEFAULT_GRID.values() if grid else [choices[:1] for choices in DEFAULT_GRID.values()]
    for smoothing, block, threshold, cooldown in itertools.product(*values):
        key = f"multiscale smoothing={smoothing} block={block}"

        def factory(hint: Hint, smoothing: int = smoothing, block: int = block) -> Any:
            return anomaly.MultiScale(
                smoothing=smoothing, block=block, cooldown=0, value_range=hint
            )

        label = f"smoothing={smoothing} block={block} threshold={threshold} cooldown={cooldown}"
        candidates[label] = Candidate(key, factory, threshold, cooldown)
    return Family(candidates)


FAMILIES: dict[str, Family] = {
    "default": _default_family(grid=False),
    "default-grid": _default_family(grid=True),
    "ewma": _single(anomaly.EWMA),
    "zscore": _single(anomaly.RollingZScore),
    "mad": _single(anomaly.MedianMAD),
    "seasonal": _single(anomaly.Seasonal),
    "holtwinters": _single(anomaly.HoltWinters),
    "cusum": _single(anomaly.CUSUM),
    "context": _single(anomaly.ContextNovelty),
    "range": _single(anomaly.RangeNovelty),
}
