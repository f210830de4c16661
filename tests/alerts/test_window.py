"""Window aggregates are exactly what a brute-force pass over the raw points gives.

The window at ``now`` is defined in ``obskit.alerts.window``: the points of the last ``size``
buckets of ``width`` seconds up to ``now``'s bucket, minus points that arrived after their bucket
had already left the ring (late, dropped). The model below recomputes every aggregate from the
raw points under that definition; percentiles must be within the sketch's relative accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from obskit.alerts.window import AGGREGATIONS, PERCENTILES, Ring

ACCURACY = 0.01


@dataclass
class Model:
    """The raw points, and the ring's rule for which of them are in the window."""

    width: float
    size: int
    head: int = -(1 << 62)
    kept: list[tuple[int, float, float, int]] = field(default_factory=list)  # index, t, v, seq

    def add(self, t: float, v: float) -> bool:
        index = int(t // self.width)
        if index <= self.head - self.size:
            return False
        self.head = max(self.head, index)
        self.kept.append((index, t, v, len(self.kept)))
        return True

    def window(self, now: float) -> list[tuple[int, float, float, int]]:
        current = int(now // self.width)
        low = max(current, self.head) - self.size + 1
        self.head = max(self.head, current)
        return [p for p in self.kept if low <= p[0] <= current]

    def expected(self, aggregation: str, now: float) -> float | None:
        points = self.window(now)
        values = [v for _, _, v, _ in points]
        if aggregation == "count":
            return len(values)
        if aggregation == "sum":
            return math.fsum(values)
        if aggregation == "rate":
            return math.fsum(values) / (self.width * self.size)
        if not values:
            return None
        if aggregation == "avg":
            return math.fsum(values) / len(values)
        if aggregation == "min":
            return min(values)
        if aggregation == "max":
            return max(values)
        if aggregation == "last":
            return max(points, key=lambda p: (p[1], p[3]))[2]
        ordered = sorted(values)
        return ordered[math.floor(PERCENTILES[aggregation] * (len(ordered) - 1))]


values = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.integers(-1000, 1000).map(float),
    st.sampled_from([0.0, 1e-12, -1e-12, 0.5]),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 400), values),
        st.tuples(st.just("query"), st.integers(0, 400), st.sampled_from(AGGREGATIONS)),
    ),
    max_size=80,
)


@given(width=st.sampled_from([0.25, 1.0, 2.5, 7.0]), size=st.integers(1, 12), steps=steps)
def test_every_aggregate_equals_brute_force_over_raw_points(
    width: float, size: int, steps: list[tuple[str, int, object]]
) -> None:
    ring = Ring(width, size, relative_accuracy=ACCURACY)
    model = Model(width, size)
    for action, tick, argument in steps:
        t = tick * 0.25
        if action == "add":
            assert ring.add(t, float(argument)) == model.add(t, float(argument))  # type: ignore[arg-type]
            continue
        aggregation = str(argument)
        got, want = ring.value(aggregation, t), model.expected(aggregation, t)
        if want is None:
            assert got is None, aggregation
        elif aggregation in PERCENTILES:
            assert got is not None
            assert abs(got - want) <= ACCURACY * abs(want) * (1 + 1e-9) + 1e-9, (
                aggregation,
                got,
                want,
            )
        else:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-6), aggregation


def test_window_slides_by_whole_buckets() -> None:
    ring = Ring(width=10.0, size=6)  # one minute, six buckets of ten seconds
    ring.add(0.0, 1.0)
    ring.add(59.9, 2.0)
    assert ring.value("count", now=59.9) == 2
    assert ring.value("count", now=60.0) == 1  # bucket [0, 10) left when [60, 70) began
    assert ring.value("count", now=119.9) == 0
    assert ring.value("avg", now=119.9) is None  # no data


def test_a_point_older_than_the_ring_is_dropped() -> None:
    ring = Ring(width=1.0, size=5)
    assert ring.add(100.0, 1.0)
    assert not ring.add(95.0, 1.0)  # bucket 95 was overwritten by the ring
    assert ring.add(96.0, 1.0)
    assert ring.value("count", now=100.0) == 2


def test_points_from_the_future_of_now_are_left_out() -> None:
    ring = Ring(width=1.0, size=10)
    ring.add(100.0, 1.0)
    ring.add(105.0, 50.0)  # stamped ahead of the evaluation time below
    assert ring.value("max", now=101.0) == 1.0
    assert ring.value("max", now=105.0) == 50.0


def test_rate_is_per_second_over_the_window() -> None:
    ring = Ring(width=30.0, size=10)  # five minutes
    for second in range(0, 300, 2):
        ring.add(float(second), 1.0)  # one increment every two seconds
    assert ring.value("rate", now=299.0) == pytest.approx(0.5)


def test_percentiles_need_a_sketch() -> None:
    ring = Ring(width=1.0, size=5)
    ring.add(1.0, 10.0)
    assert ring.value("p99", now=1.0) is None


def test_sketch_memory_is_bounded_per_bucket() -> None:
    ring = Ring(width=1.0, size=1, relative_accuracy=0.01, max_sketch_buckets=64)
    for exponent in range(-8, 12):
        for step in range(20):
            ring.add(0.0, 10.0**exponent * (1 + step / 20))
    assert ring.sketches is not None
    assert len(ring.sketches[0]) <= 64
    top = ring.value("p99", now=0.0)
    assert top is not None and abs(top - 1.75e11) <= 0.01 * 1.75e11 * 1.01  # 5th largest: kept
