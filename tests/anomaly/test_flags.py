"""Readable flags: a flag is never inside its own band, bands respect the known range, one flag
per incident, and every flag says what fired and why."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obskit import anomaly
from tests.anomaly.conftest import FACTORIES

VALUES = st.lists(
    st.one_of(
        st.floats(min_value=-1e3, max_value=1e3, allow_nan=False),
        st.sampled_from([0.0, 1.0, 50.0, 1e4]),
    ),
    min_size=1,
    max_size=120,
)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_every_factory(values: list[float], check) -> None:  # type: ignore[no-untyped-def]
    for name, factory in FACTORIES.items():
        detector = factory()
        for i, value in enumerate(values):
            check(name, detector.update(value, 1_700_000_000.0 + 60.0 * i))


@FAST
@given(VALUES)
def test_a_point_inside_the_reported_band_is_never_flagged(values: list[float]) -> None:
    def check(name: str, result: anomaly.AnomalyScore) -> None:
        if result.is_anomaly and result.lower is not None and result.upper is not None:
            assert not result.lower <= result.value <= result.upper, name  # type: ignore[operator]

    _check_every_factory(values, check)


@FAST
@given(VALUES)
def test_every_flag_names_what_fired_and_why(values: list[float]) -> None:
    def check(name: str, result: anomaly.AnomalyScore) -> None:
        if result.is_anomaly:
            assert result.member and result.reason and len(result.reason.split()) >= 4, name

    _check_every_factory(values, check)


@FAST
@given(st.lists(st.floats(min_value=0.0, max_value=1e3), min_size=1, max_size=120))
def test_bands_of_a_series_declared_non_negative_stay_non_negative(values: list[float]) -> None:
    for name, factory in FACTORIES.items():
        if name in ("ensemble", "likelihood"):  # composites take the hint through members
            continue
        detector = factory(value_range=(0, None))
        for i, value in enumerate(values):
            result = detector.update(value, 1_700_000_000.0 + 60.0 * i)
            assert result.lower is None or result.lower >= 0.0, name
            assert result.expected is None or result.expected >= 0.0 or name.startswith("holt")


def test_the_default_keeps_a_latency_band_non_negative_without_being_told() -> None:
    rng = random.Random(3)
    detector = anomaly.default()
    latencies = [abs(rng.gauss(15.0, 25.0)) for _ in range(5000)]  # jittery, near zero
    results = detector.update_many(latencies, [1_700_000_000.0 + i for i in range(5000)])
    lows = [result.lower for result in results if result.lower is not None]
    assert lows and min(lows) >= 0.0


def test_value_range_with_an_unknown_side_declares_only_what_is_known() -> None:
    detector = anomaly.EWMA(value_range=(0, None))
    assert detector.value_range is None  # no full hint: nothing is cut from it
    assert anomaly.from_state(detector.state()).state()["config"]["value_range"] == [0.0, None]


def test_a_sustained_shift_is_one_incident_one_flag() -> None:
    rng = random.Random(5)
    detector = anomaly.EWMA(alpha=0.05, cooldown=20)
    detector.update_many([50.0 + rng.gauss(0, 1) for _ in range(500)])
    shifted = detector.update_many([80.0 + rng.gauss(0, 1) for _ in range(400)])
    flags = [i for i, result in enumerate(shifted) if result.is_anomaly]
    assert flags == [0]
    assert shifted[0].reason and "above the expected" in shifted[0].reason
    # The incident closed once the mean caught up; a new one is flagged again.
    again = detector.update_many([10.0])
    assert again[0].is_anomaly


def test_the_ensemble_names_the_member_that_fired() -> None:
    detector = anomaly.Ensemble(
        [anomaly.EWMA(), anomaly.RangeNovelty()], cooldown=10, threshold=0.4
    )
    detector.update_many([50.0 + (i % 5) for i in range(500)])
    result = detector.update(90.0)
    assert result.is_anomaly and result.member in ("ewma", "range")
    assert result.reason is not None and "90" in result.reason


def test_multiscale_says_which_view_fired() -> None:
    detector = anomaly.MultiScale(value_range=(0, 100))
    detector.update_many([50.0 + (i % 7) for i in range(2000)])
    result = detector.update(97.0)
    assert (result.is_anomaly, result.member) == (True, "range")
    assert result.reason == "97 is above anything seen before (50 to 56)"


def test_factories_cover_every_detector() -> None:
    names = {factory().name for factory in FACTORIES.values()}
    assert names >= {
        "ewma",
        "zscore",
        "mad",
        "seasonal",
        "holtwinters",
        "cusum",
        "context",
        "range",
        "likelihood",
        "ensemble",
        "multiscale",
    }
