"""Detector factories shared by the interface specifications."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from obskit import anomaly

Factory = Callable[..., anomaly.BaseDetector]

#: Every public detector, built small so that warm-ups end inside short hypothesis examples.
FACTORIES: dict[str, Factory] = {
    "ewma": lambda **hint: anomaly.EWMA(alpha=0.2, warmup=3, **hint),
    "zscore": lambda **hint: anomaly.RollingZScore(window=8, warmup=3, **hint),
    "mad": lambda **hint: anomaly.MedianMAD(window=9, warmup=3, **hint),
    "seasonal": lambda **hint: anomaly.Seasonal(period=6, buckets=3, warmup=3, **hint),
    "holt": lambda **hint: anomaly.HoltWinters(warmup=3, **hint),
    "holtwinters": lambda **hint: anomaly.HoltWinters(season_length=4, warmup=3, **hint),
    "cusum": lambda **hint: anomaly.CUSUM(limit=3.0, warmup=3, **hint),
    "context": lambda **hint: anomaly.ContextNovelty(levels=4, order=3, fit=5, warmup=3, **hint),
    "context_blocks": lambda **hint: anomaly.ContextNovelty(
        levels=4, order=2, scale=3, fit=2, capacity=6, warmup=3, **hint
    ),
    "range": lambda **hint: anomaly.RangeNovelty(warmup=3, **hint),
    "multiscale": lambda **hint: anomaly.MultiScale(
        levels=4, order=3, smoothing=2, block=4, period=12, buckets=4, fit=5, **hint
    ),
    "likelihood": lambda **hint: anomaly.AnomalyLikelihood(
        anomaly.EWMA(alpha=0.2, **hint), half_life=1000, warmup=3
    ),
    "ensemble": lambda **hint: anomaly.Ensemble(
        [anomaly.EWMA(alpha=0.2, **hint), anomaly.RangeNovelty(**hint)],
        weights=[2, 1],
        cooldown=4,
        warmup=3,
        threshold=0.3,
    ),
    "default": lambda **hint: anomaly.default(**hint),
}


@pytest.fixture(params=sorted(FACTORIES))
def factory(request: pytest.FixtureRequest) -> Factory:
    return FACTORIES[request.param]


def daily_wave(points: int, step_s: float = 300.0, start: float = 1_700_000_000.0):
    """A clean daily sine (value, timestamp) series, 0..100, for detectors that need a season."""
    for i in range(points):
        moment = start + i * step_s
        yield 50.0 + 40.0 * math.sin(2 * math.pi * (moment % 86_400) / 86_400), moment
