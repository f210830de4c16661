"""``obskit.anomaly``: streaming anomaly detectors with one interface.

Every detector scores a point as it arrives (``update(value, timestamp=None)``), needs no
training step, holds bounded memory, never raises on bad input (it skips and counts it), and
saves and restores its learned state as JSON-safe data (``state()`` / ``from_state()``)::

    from obskit import anomaly
    detector = anomaly.default(value_range=(0, 100))   # the ensemble; the hint is optional
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
    "RangeNovelty",
    "RollingZScore",
    "Seasonal",
    "StateError",
    "Watch",
    "default",
    "from_state",
    "watch",
]


def default(value_range: Sequence[float] | None = None) -> Ensemble:
    """A fresh default detector: the calibrated ensemble that obskit scores on NAB.

    Members: the time-of-day baseline (:class:`Seasonal`, which also draws the band),
    context novelty at two time scales (:class:`ContextNovelty`, per point and per block of
    16), and :class:`RangeNovelty`. ``value_range=(low, high)``, when known, fixes the bins of
    the context detectors instead of learning them from the first 400 points.
    """
    return Ensemble(
        [
            Seasonal(period=DAY, buckets=48, alpha=0.1, value_range=value_range),
            AnomalyLikelihood(
                ContextNovelty(levels=8, order=5, value_range=value_range), smoothing=5
            ),
            ContextNovelty(levels=8, order=5, scale=16, fit=25, warmup=10, value_range=value_range),
            RangeNovelty(value_range=value_range),
        ],
        cooldown=120,
        threshold=0.25,
    )


def from_state(state: Any) -> BaseDetector:
    """Rebuild any detector from its ``state()``; a damaged blob raises :class:`StateError`."""
    return detector_from_state(state)
