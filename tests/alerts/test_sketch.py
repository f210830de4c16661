"""The quantile sketch: relative error as documented, and merging is exact."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from obskit.alerts.sketch import QuantileSketch

finite = st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False)
quantiles = st.sampled_from([0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0])


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


@given(st.lists(finite, min_size=1, max_size=300), quantiles, st.sampled_from([0.005, 0.01, 0.05]))
def test_quantile_is_within_the_relative_accuracy(
    values: list[float], q: float, alpha: float
) -> None:
    sketch = QuantileSketch(relative_accuracy=alpha)
    sketch.extend(values)
    want = exact(values, q)
    got = sketch.quantile(q)
    assert got is not None
    assert abs(got - want) <= alpha * abs(want) * (1 + 1e-9) + 1e-9


@given(st.lists(finite, max_size=100), st.lists(finite, max_size=100))
def test_merging_equals_sketching_everything_at_once(left: list[float], right: list[float]) -> None:
    a, b, both = QuantileSketch(), QuantileSketch(), QuantileSketch()
    a.extend(left)
    b.extend(right)
    both.extend(left + right)
    a.merge(b)
    assert (a.positive, a.negative, a.zero, a.count) == (
        both.positive,
        both.negative,
        both.zero,
        both.count,
    )


def test_an_empty_sketch_has_no_quantile() -> None:
    assert QuantileSketch().quantile(0.5) is None


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="relative_accuracy"):
        QuantileSketch(relative_accuracy=1.5)
    with pytest.raises(ValueError, match="max_buckets"):
        QuantileSketch(max_buckets=1)


def test_collapsing_keeps_the_high_quantiles_exact_to_the_guarantee() -> None:
    sketch = QuantileSketch(relative_accuracy=0.01, max_buckets=50)
    values = [10.0 ** (k / 10) for k in range(-60, 100)]  # 160 distinct buckets
    sketch.extend(values)
    assert len(sketch.positive) <= 50
    got = sketch.quantile(0.99)
    want = exact(values, 0.99)
    assert got is not None and abs(got - want) <= 0.01 * want * 1.000001
