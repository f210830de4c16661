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

from typing import Any

from obskit.anomaly._base import AnomalyScore, BaseDetector, Detector, detector_from_state
from obskit.anomaly._state import StateError
from obskit.anomaly.ewma import EWMA
from obskit.anomaly.zscore import RollingZScore

__all__ = [
    "EWMA",
    "AnomalyScore",
    "BaseDetector",
    "Detector",
    "RollingZScore",
    "StateError",
    "from_state",
]


def from_state(state: Any) -> BaseDetector:
    """Rebuild any detector from its ``state()``; a damaged blob raises :class:`StateError`."""
    return detector_from_state(state)
