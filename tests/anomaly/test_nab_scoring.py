"""The NAB scorer of benchmarks/nab, checked on synthetic files small enough to reason about."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

NAB_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "nab"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"nab_{name}", NAB_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


scoring = _load("scoring")
ROWS = 1000  # probation: 150 rows
WINDOWS = [(300, 399), (700, 799)]


def _score(scores: list[float], windows: list[tuple[int, int]] = WINDOWS) -> dict[str, float]:
    rows = scoring.score_rows(scores, windows)
    results = scoring.score_corpus([rows], total_windows=len(windows))
    return {name: result.normalised for name, result in results.items()}


def _fire_at(*rows: int) -> list[float]:
    scores = [0.0] * ROWS
    for row in rows:
        scores[row] = 1.0
    return scores


def test_probation_is_fifteen_percent_capped_at_750() -> None:
    assert scoring.probation_length(1000) == 150
    assert scoring.probation_length(4032) == 604
    assert scoring.probation_length(22695) == 750


def test_scaled_sigmoid_matches_nab() -> None:
    assert scoring.scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scoring.scaled_sigmoid(0.0) == 0.0
    assert scoring.scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scoring.scaled_sigmoid(3.0) == -1.0


def test_firing_exactly_at_window_starts_scores_100() -> None:
    assert _score(_fire_at(300, 700)) == pytest.approx(
        {name: 100.0 for name in ("standard", "reward_low_FP_rate", "reward_low_FN_rate")}
    )


def test_never_firing_scores_0() -> None:
    assert set(_score([0.0] * ROWS).values()) == {0.0}


def test_a_late_detection_earns_less_than_an_early_one() -> None:
    early, middle, last = (_score(_fire_at(row, 700))["standard"] for row in (300, 350, 399))
    assert early > middle > last
    # The last row of a window: p = -1/width, so it earns f(-0.01) / f(-1) ~ 0.0253.
    credit = scoring.scaled_sigmoid(-0.01) / scoring.scaled_sigmoid(-1.0)
    assert last == pytest.approx(100 * (1 + credit + 2) / 4)


def test_a_false_positive_far_from_windows_costs_the_fp_weight() -> None:
    base = _score(_fire_at(300, 700))
    with_fp = _score(_fire_at(200, 300, 700))  # before any window: full penalty
    assert base["standard"] - with_fp["standard"] == pytest.approx(100 * 0.11 / 4)
    assert base["reward_low_FP_rate"] - with_fp["reward_low_FP_rate"] == pytest.approx(
        100 * 0.22 / 4
    )
    assert base["reward_low_FN_rate"] - with_fp["reward_low_FN_rate"] == pytest.approx(
        100 * 0.11 / 6
    )


def test_a_false_positive_just_after_a_window_costs_almost_nothing() -> None:
    penalty_after = 100.0 - _score(_fire_at(300, 401, 700))["standard"]
    assert 0 < penalty_after < 100 * 0.11 / 4 / 10


def test_detections_during_probation_are_ignored() -> None:
    assert _score(_fire_at(10, 300, 700)) == _score(_fire_at(300, 700))


def test_only_the_earliest_detection_in_a_window_counts() -> None:
    assert _score(_fire_at(300, 301, 350, 700)) == _score(_fire_at(300, 700))


def test_the_threshold_sweep_keeps_the_best_threshold() -> None:
    scores = [0.0] * ROWS
    scores[300] = scores[700] = 0.9  # the windows
    for row in range(160, 200, 2):
        scores[row] = 0.95  # noise above them: a threshold at 0.9 pays 20 false positives
    results = scoring.score_corpus([scoring.score_rows(scores, WINDOWS)], total_windows=2)
    standard = results["standard"]
    assert standard.threshold == 0.9 and standard.detected_windows == 2
    assert standard.normalised == pytest.approx(100 * (4 - 20 * 0.11) / 4)
    low_fp = results["reward_low_FP_rate"]
    assert low_fp.threshold == math.inf and low_fp.normalised == 0.0  # better never to fire


def test_windows_are_counted_once_across_several_files() -> None:
    first = scoring.score_rows(_fire_at(300, 700), WINDOWS, window_base=0)
    second = scoring.score_rows([0.0] * ROWS, WINDOWS, window_base=2)
    results = scoring.score_corpus([first, second], total_windows=4)
    assert results["standard"].normalised == pytest.approx(50.0)


def test_scoring_at_the_swept_threshold_gives_the_swept_score() -> None:
    scores = [0.0] * ROWS
    scores[300], scores[710], scores[500], scores[180] = 0.9, 0.8, 0.85, 0.3
    rows = scoring.score_rows(scores, WINDOWS)
    for profile in scoring.PROFILES:
        best = scoring.score_corpus([rows], total_windows=2)[profile.name]
        fixed = scoring.score_at([rows], 2, profile, best.threshold)
        assert fixed.normalised == pytest.approx(best.normalised)
        assert (fixed.detected_windows, fixed.false_positives) == (
            best.detected_windows,
            best.false_positives,
        )


def _shared_nab() -> Path | None:
    """The NAB copy in ``shared/nab`` beside the repository (or a parent of it), if any."""
    corpus = _load("corpus")
    root: Path | None = corpus.find_root(NAB_DIR.parents[1])
    return root


@pytest.mark.skipif(
    _shared_nab() is None or not (_shared_nab() / "reference" / "random").is_dir(),  # type: ignore[operator]
    reason="no NAB copy with reference/random in shared/nab beside the repository",
)
def test_the_scorer_reproduces_nabs_own_scores_of_its_random_detector() -> None:
    """NAB's published random-detector output, re-scored: all three profiles to two decimals."""
    root = _shared_nab()
    assert root is not None
    corpus = _load("corpus").load_corpus(root)
    reference = root / "reference" / "random"
    files, base = [], 0
    for series in corpus:
        with (reference / series.name).open() as handle:
            next(handle)
            scores = [float(line.split(",")[1]) for line in handle]
        files.append(scoring.score_rows(scores, series.windows, base))
        base += len(series.windows)
    results = scoring.score_corpus(files, total_windows=base)
    assert {name: round(result.normalised, 2) for name, result in results.items()} == {
        "standard": 19.56,
        "reward_low_FP_rate": 6.37,
        "reward_low_FN_rate": 28.76,
    }
