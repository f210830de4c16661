"""One score scale for every detector: how improbable a deviation is, on a log scale.

A detector that measures a deviation ``z`` (in units of its spread) reports
``score = -log10(P(|Z| >= |z|)) / 10`` for a standard normal ``Z``, capped at 1: 0.3 is a one
in a thousand event, 0.5 one in 100,000 (``|z|`` about 4.4), 1.0 one in 10^10 or rarer. The log
scale keeps large deviations apart (a probability scale would round them all to 1.0), and the
shared scale lets the ensemble compare and combine detectors.
"""

from __future__ import annotations

import math

__all__ = ["score_for_z", "z_for_score"]

_SQRT_HALF = 0.7071067811865476
_LOG10_FLOOR = 1e-10


def score_for_z(z: float) -> float:
    """The score of a deviation of ``z`` standard deviations (either sign)."""
    tail = math.erfc(abs(z) * _SQRT_HALF)
    if tail > _LOG10_FLOOR:
        return 0.0 - math.log10(tail) / 10.0
    return 0.0 if tail != tail else 1.0  # NaN (from a degenerate spread) is ordinary


def z_for_score(score: float) -> float:
    """The deviation that scores ``score``: where a detector draws its band."""
    low, high = 0.0, 40.0
    for _ in range(80):
        middle = (low + high) / 2
        if score_for_z(middle) < score:
            low = middle
        else:
            high = middle
    return high
