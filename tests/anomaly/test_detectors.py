"""What each detector sees, and what it is blind to, on small synthetic series."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from obskit import anomaly
from obskit.anomaly.mad import _mad, _median
from obskit.config import ConfigError

from .conftest import daily_wave


def _noise(points: int, level: float = 50.0, spread: float = 1.0, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(level, spread) for _ in range(points)]


def _flags(detector: anomaly.BaseDetector, values: list[float]) -> list[int]:
    return [i for i, result in enumerate(detector.update_many(values)) if result.is_anomaly]


# -- score scale ------------------------------------------------------------------------
def test_scores_are_a_log_scale_of_normal_tail_probabilities() -> None:
    from obskit.anomaly._scores import score_for_z, z_for_score

    assert score_for_z(0.0) == 0.0
    assert score_for_z(3.0) == pytest.approx(-math.log10(0.0027) / 10, rel=1e-2)
    assert score_for_z(-4.0) == score_for_z(4.0)
    assert score_for_z(50.0) == 1.0 and score_for_z(math.nan) == 0.0
    assert score_for_z(z_for_score(0.5)) == pytest.approx(0.5)


# -- EWMA, z-score, MAD -------------------------------------------------------------------
def test_ewma_flags_a_spike_and_its_band_holds_the_usual_values() -> None:
    detector = anomaly.EWMA()
    values = _noise(300)
    assert _flags(detector, values) == []
    normal, spike = detector.update(50.5), detector.update(60.0)
    assert not normal.is_anomaly and normal.lower < 50.5 < normal.upper
    assert spike.is_anomaly and spike.score > 0.9


def test_ewma_gets_used_to_a_level_shift_within_a_few_over_alpha_points() -> None:
    detector = anomaly.EWMA(alpha=0.1)
    detector.update_many(_noise(200))
    flagged = _flags(detector, _noise(100, level=60.0, seed=8))
    assert flagged and flagged[0] == 0 and max(flagged) < 60


def test_rolling_zscore_forgets_a_spike_when_the_window_slides_past_it() -> None:
    detector = anomaly.RollingZScore(window=50)
    detector.update_many(_noise(100))
    detector.update(90.0)
    inflated = detector.update(57.0)
    assert not inflated.is_anomaly  # the spike inflates the standard deviation...
    detector.update_many(_noise(50, seed=9))
    assert detector.update(57.0).is_anomaly  # ...until it has left the window


def test_mad_is_not_blinded_by_a_burst_of_outliers() -> None:
    values = _noise(200)
    for i in range(100, 200, 5):  # 20 % of the window are outliers
        values[i] = 500.0
    mad, zscore = anomaly.MedianMAD(window=100), anomaly.RollingZScore(window=100)
    mad.update_many(values)
    zscore.update_many(values)
    assert mad.update(58.0).is_anomaly
    assert not zscore.update(58.0).is_anomaly


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60))
def test_mad_selection_equals_the_textbook_definition(values: list[float]) -> None:
    ordered = sorted(values)
    median = _median(ordered)
    assert median == statistics.median(values)
    assert _mad(ordered, median) == pytest.approx(
        statistics.median(abs(value - median) for value in values), rel=1e-12, abs=1e-12
    )


# -- time-aware and model-based -----------------------------------------------------------
def test_seasonal_knows_the_time_of_day() -> None:
    detector = anomaly.Seasonal()  # 48 half-hour slots of a day
    points = list(daily_wave(288 * 5))
    detector.update_many([value for value, _ in points], [moment for _, moment in points])
    moment = points[-1][1] + 300.0
    usual_now = 50.0 + 40.0 * math.sin(2 * math.pi * (moment % 86_400) / 86_400)
    assert not detector.update(usual_now, moment).is_anomaly
    # A value that is common at another time of day is still wrong at this one.
    assert detector.update(100.0 - usual_now, moment + 300.0).is_anomaly


def test_seasonal_without_timestamps_counts_points() -> None:
    detector = anomaly.Seasonal(period=4, buckets=4, warmup=0)
    detector.update_many([1.0, 5.0, 9.0, 5.0] * 10)
    assert not detector.update(1.0).is_anomaly
    assert detector.update(1.0).is_anomaly  # slot 1 expects 5.0


def test_holt_forecasts_along_a_trend_where_ewma_lags_behind() -> None:
    ramp = [10.0 * i + (1.0 if i % 2 else -1.0) for i in range(300)]
    holt, ewma = anomaly.HoltWinters(alpha=0.5, beta=0.1), anomaly.EWMA(alpha=0.05)
    assert _flags(holt, ramp) == []
    ewma.update_many(ramp)
    assert holt.update(3000.0).expected == pytest.approx(3000.0, abs=5)
    assert ewma.update(3000.0).expected < 2850.0  # about (1 - alpha) / alpha steps behind


def test_holt_winters_learns_the_season_it_is_given() -> None:
    cycle = [10.0, 30.0, 50.0, 30.0, 10.0, 5.0]
    detector = anomaly.HoltWinters(alpha=0.3, gamma=0.3, season_length=6)
    values = [value + (0.5 if i % 2 else -0.5) for i, value in enumerate(cycle * 40)]
    assert _flags(detector, values) == []
    assert detector.update(10.0).is_anomaly  # the peak slot (50) came in at 10


def test_cusum_finds_a_shift_too_small_for_any_single_point() -> None:
    before, after = _noise(400), _noise(100, level=51.5, seed=3)
    assert _flags(anomaly.EWMA(), before + after) == []
    found = _flags(anomaly.CUSUM(), before + after)
    assert found and 400 <= found[0] < 420


def test_cusum_restarts_after_a_change_point() -> None:
    detector = anomaly.CUSUM()
    detector.update_many(_noise(300))
    first = _flags(detector, _noise(300, level=53.0, seed=4))
    assert len(first) == 1  # the new level becomes the baseline


# -- novelty ------------------------------------------------------------------------------
def test_range_novelty_flags_each_new_extreme_once() -> None:
    detector = anomaly.RangeNovelty(warmup=10)
    detector.update_many([float(i % 10) for i in range(100)])
    assert [detector.update(value).is_anomaly for value in (15.0, 15.0, 4.0, -8.0)] == [
        True,
        False,
        False,
        True,
    ]


def test_context_novelty_flags_a_new_pattern_made_of_familiar_values() -> None:
    detector = anomaly.ContextNovelty(levels=4, order=4, warmup=20, value_range=(0, 100))
    detector.update_many([10.0, 10.0, 90.0, 90.0] * 30)
    assert detector.update(10.0).score == 0.0
    odd = detector.update(90.0)  # 10, 90, 90, 10, 90: never happened in this order
    assert odd.is_anomaly is False and odd.score == 0.5  # two of four contexts are new
    assert detector.update(10.0).score > 0.0


def test_context_novelty_learns_the_range_from_the_first_points_without_a_hint() -> None:
    detector = anomaly.ContextNovelty(fit=50, warmup=0)
    results = detector.update_many(_noise(50))
    assert all(result.score == 0.0 for result in results)  # still fitting
    assert detector.update(50.0).score < 1.0
    low, high = detector.state()["data"]["bounds"]
    assert low < min(_noise(50)) and high > max(_noise(50))


def test_context_novelty_recuts_its_bins_when_a_value_leaves_them() -> None:
    detector = anomaly.ContextNovelty(fit=50, warmup=0)
    detector.update_many(_noise(300))
    assert len(detector.state()["data"]["known"]) > 10
    assert detector.update(1000.0).score == 1.0  # outside every bin there was
    data = detector.state()["data"]
    assert data["bounds"][1] > 1000.0 and len(data["known"]) == 1  # relearning from here
    assert detector.update(1000.0).score < 1.0


def test_context_novelty_with_a_hint_never_recuts() -> None:
    detector = anomaly.ContextNovelty(warmup=0, value_range=(0, 100))
    detector.update_many(_noise(300))
    detector.update(1000.0)  # beyond the hint: the top bin
    assert detector.state()["data"]["bounds"] == [0.0, 100.0]


def test_context_novelty_memory_is_bounded_by_its_capacity() -> None:
    detector = anomaly.ContextNovelty(levels=16, order=5, capacity=200, value_range=(0, 1))
    rng = random.Random(1)
    detector.update_many([rng.random() for _ in range(2000)])
    assert len(detector.state()["data"]["known"]) == 200


def test_context_novelty_in_blocks_scores_once_per_block() -> None:
    detector = anomaly.ContextNovelty(scale=4, levels=4, order=2, warmup=0, value_range=(0, 8))
    results = detector.update_many([1.0, 1.0, 1.0, 1.0, 7.0, 7.0, 7.0, 7.0])
    assert [result.score > 0 for result in results] == [False, False, False, True] * 2


# -- likelihood and ensemble ----------------------------------------------------------------
class Scripted(anomaly.BaseDetector):
    """A stand-in whose raw score is the value it is given: the likelihood's input, verbatim."""

    def __init__(self) -> None:
        super().__init__(warmup=0, threshold=0.5, value_range=None)

    def _step(self, value: float, timestamp: float | None) -> anomaly.AnomalyScore:
        return self._result(value, value, None, None, timestamp)


def test_likelihood_scores_the_tail_probability_of_the_raw_score() -> None:
    detector = anomaly.AnomalyLikelihood(Scripted(), rarest=1e-4)
    detector.update_many([0.0] * 1999 + [0.5])
    # 0.9 never happened in 2000 points: p = 1 / 2001.
    assert detector.update(0.9).score == pytest.approx(math.log(2001) / math.log(1e4))
    # 0.5 or more happened twice now: p = 3 / 2002.
    assert detector.update(0.5).score == pytest.approx(math.log(2002 / 3) / math.log(1e4))
    assert detector.update(0.0).score == 0.0


def test_likelihood_half_life_forgets_an_old_habit() -> None:
    habit = [0.9] * 1000 + [0.0] * 3000
    keeps = anomaly.AnomalyLikelihood(Scripted())
    forgets = anomaly.AnomalyLikelihood(Scripted(), half_life=200)
    keeps.update_many(habit)
    forgets.update_many(habit)
    assert keeps.update(0.9).score < 0.2  # a quarter of its history scored 0.9
    assert forgets.update(0.9).score > 0.6  # that quarter is 15 half-lives old


def test_likelihood_smoothing_rates_the_mean_of_recent_raw_scores() -> None:
    single = anomaly.AnomalyLikelihood(Scripted(), smoothing=4)
    single.update_many([0.0] * 1000)
    lone = single.update(1.0).score
    assert single.update(1.0).score > lone  # two in a row are rarer than one


def test_ensemble_needs_agreement_to_score_high() -> None:
    def members() -> list[anomaly.BaseDetector]:
        return [anomaly.EWMA(), anomaly.RangeNovelty()]

    history = [50.0 + (i % 5) for i in range(1000)] + [50.0] * 300
    both, one = anomaly.Ensemble(members()), anomaly.Ensemble(members())
    both.update_many(history)
    one.update_many(history)
    assert both.update(90.0).score > 0.6  # beyond the range and far from the mean
    alone = one.update(54.0)  # far from the recent mean, but inside the range
    assert 0.3 < alone.score <= 0.5


def test_ensemble_cooldown_keeps_one_incident_to_one_alert() -> None:
    detector = anomaly.Ensemble([anomaly.EWMA(), anomaly.RangeNovelty()], cooldown=5)
    detector.update_many([50.0 + (i % 5) for i in range(500)])
    flagged = _flags(detector, [90.0, 91.0, 92.0, 93.0, 94.0, 95.0, 200.0])
    assert flagged == [0, 6]


def test_ensemble_weights_and_raw_mode() -> None:
    values = [1.0, 2.0, 1.0, 2.0, 2.5]
    detector = anomaly.Ensemble(
        [anomaly.RangeNovelty(warmup=0), anomaly.EWMA(warmup=0)], weights=[3, 1], calibrate=False
    )
    alone = [anomaly.RangeNovelty(warmup=0), anomaly.EWMA(warmup=0)]
    result = detector.update_many(values)[-1]
    range_result, ewma_result = (member.update_many(values)[-1] for member in alone)
    assert detector.weights == [0.75, 0.25]
    assert result.score == pytest.approx(0.75 * range_result.score + 0.25 * ewma_result.score)
    assert (result.lower, result.upper) == (range_result.lower, range_result.upper)


@pytest.mark.parametrize(
    "kwargs",
    [{"members": []}, {"members": [anomaly.EWMA()], "weights": [1, 2]}, {"weights": [0]}],
)
def test_ensemble_configuration_mistakes(kwargs: dict[str, object]) -> None:
    kwargs.setdefault("members", [anomaly.EWMA()])
    with pytest.raises(ConfigError):
        anomaly.Ensemble(**kwargs)  # type: ignore[arg-type]


# -- the default ------------------------------------------------------------------------------
def test_default_is_a_fresh_multiscale_detector_each_time() -> None:
    first, second = anomaly.default(), anomaly.default(value_range=(0, 100))
    assert first is not second and isinstance(first, anomaly.MultiScale)
    assert second.value_range == (0.0, 100.0)


@pytest.mark.parametrize("hint", [None, (0.0, 100.0)])
def test_default_stays_quiet_on_a_clean_daily_cycle_and_catches_what_breaks_it(
    hint: tuple[float, float] | None,
) -> None:
    rng = random.Random(11)
    points = [(value + rng.gauss(0, 1), moment) for value, moment in daily_wave(288 * 14)]
    detector = anomaly.default(value_range=hint)
    results = detector.update_many([v for v, _ in points], [t for _, t in points])
    assert sum(result.is_anomaly for result in results[288 * 3 :]) <= 2
    start = points[-1][1]
    broken = [(50.0 + rng.gauss(0, 1), start + 300.0 * (i + 1)) for i in range(288)]  # flat day
    flagged = [
        i
        for i, result in enumerate(
            detector.update_many([v for v, _ in broken], [t for _, t in broken])
        )
        if result.is_anomaly
    ]
    assert flagged and flagged[0] < 144  # within half a day


# -- vectorised backfill ------------------------------------------------------------------------
@pytest.mark.parametrize("cooldown", [0, 7])
def test_zscore_backfill_with_numpy_matches_point_by_point_updates(cooldown: int) -> None:
    pytest.importorskip("numpy")
    values = _noise(3000, level=1e6, spread=5.0)  # a large offset tests the centring
    for i in range(500, 3000, 400):
        values[i] += 60.0
    vectorised, sequential = (
        anomaly.RollingZScore(window=200, cooldown=cooldown) for _ in range(2)
    )
    fast = vectorised.update_many(values[:1500]) + vectorised.update_many(values[1500:])
    slow = [sequential.update(value) for value in values]
    assert [r.is_anomaly for r in fast] == [r.is_anomaly for r in slow]
    assert sum(r.is_anomaly for r in slow) == 7  # one per spike
    for a, b in zip(fast, slow, strict=True):
        assert a.score == pytest.approx(b.score, rel=1e-6, abs=1e-9)
        assert (a.expected is None) == (b.expected is None)
    assert vectorised.seen == sequential.seen == 3000
    after_fast, after_slow = vectorised.update(1e6 + 100), sequential.update(1e6 + 100)
    assert after_fast.score == pytest.approx(after_slow.score, rel=1e-9)


def test_zscore_backfill_falls_back_for_input_numpy_would_misread() -> None:
    detector = anomaly.RollingZScore(warmup=0)
    values: list[object] = [1.0, 2.0] * 200 + ["12", None, math.nan]
    results = detector.update_many(values)
    assert [r.skipped for r in results[-3:]] == [True, True, True]
    assert detector.problems == {"value_not_numeric": 2, "value_not_finite": 1}


def test_zscore_backfill_of_a_fresh_detector_without_warmup_matches_too() -> None:
    pytest.importorskip("numpy")
    values = [5.0, 100.0, 5.0, *_noise(400, level=5.0)]
    fast = anomaly.RollingZScore(warmup=0).update_many(values)
    sequential = anomaly.RollingZScore(warmup=0)
    slow = [sequential.update(value) for value in values]
    assert [r.is_anomaly for r in fast] == [r.is_anomaly for r in slow]
    assert (fast[0].expected, fast[1].expected) == (None, None)


def test_zscore_backfill_without_numpy_is_point_by_point(monkeypatch: pytest.MonkeyPatch) -> None:
    from obskit.anomaly import zscore

    monkeypatch.setattr(zscore, "_numpy", None)
    values = _noise(600)
    detector, reference = anomaly.RollingZScore(), anomaly.RollingZScore()
    assert detector.update_many(iter(values)) == [reference.update(value) for value in values]
