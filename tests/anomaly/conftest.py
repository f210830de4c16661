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
}


@pytest.fixture(params=sorted(FACTORIES))
def factory(request: pytest.FixtureRequest) -> Factory:
    return FACTORIES[request.param]


def daily_wave(points: int, step_s: float = 300.0, start: float = 1_700_000_000.0):
    """A clean daily sine (value, timestamp) series, 0..100, for detectors that need a season."""
    for i in range(points):
        moment = start + i * step_s
        yield 50.0 + 40.0 * math.sin(2 * math.pi * (moment % 86_400) / 86_400), moment
