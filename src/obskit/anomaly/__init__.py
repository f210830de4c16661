"""``obskit.anomaly``: streaming anomaly detectors with one interface.

Every detector scores a point as it arrives (``update(value, timestamp=None)``), needs no
training step, holds bounded memory, never raises on bad input (it skips and counts it), and
saves and restores its learned state as JSON-safe data (``state()`` / ``from_state()``)::

    from obskit import anomaly
    detector = anomaly.default(value_range=(0, 100))   # MultiScale; the hint is optional
    result = detector.update(42.0, timestamp=1_700_000_000)
    result.score, result.is_anomaly, result.lower, result.upper

See docs/anomaly.md for what each detector suits and how they score on NAB.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from obskit.anomaly._base import AnomalyScore, BaseDetector, Detector, detector_from_state
from obskit.anomaly._state import StateError
from obskit.anomaly.changepoint import CUSUM
from obskit.anomaly.context import ContextNovelty
from obskit.anomaly.ensemble import Ensemble
from obskit.anomaly.ewma import EWMA
from obskit.anomaly.holtwinters import HoltWinters
from obskit.anomaly.likelihood import AnomalyLikelihood
from obskit.anomaly.mad import MedianMAD
from obskit.anomaly.multiscale import MultiScale
from obskit.anomaly.range_novelty import RangeNovelty
from obskit.anomaly.seasonal import DAY, WEEK, Seasonal
from obskit.anomaly.watching import Watch, watch
from obskit.anomaly.zscore import RollingZScore

__all__ = [
    "CUSUM",
    "DAY",
    "EWMA",
    "WEEK",
    "AnomalyLikelihood",
    "AnomalyScore",
    "BaseDetector",
    "ContextNovelty",
    "Detector",
    "Ensemble",
    "HoltWinters",
    "MedianMAD",
    "MultiScale",
    "RangeNovelty",
    "RollingZScore",
    "Seasonal",
    "StateError",
    "Watch",
    "default",
    "from_state",
    "watch",
]


def default(value_range: Sequence[float | None] | None = None) -> MultiScale:
    """A fresh default detector: :class:`MultiScale` with the settings chosen on NAB.

    Four views (time of day, pattern, slow pattern, range), each judged by its rarity in its own
    history; one flag per incident. ``value_range=(low, high)``, when known, fixes the bins of
    the pattern views instead of learning them from the first 400 points; ``(0, None)``
    declares a series that is never negative (a latency), so its band never goes below 0.
    """
    return MultiScale(value_range=value_range)


def from_state(state: Any) -> BaseDetector:
    """Rebuild any detector from its ``state()``; a damaged blob raises :class:`StateError`."""
    return detector_from_state(state)
