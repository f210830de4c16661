"""The leave-one-category-out machinery of benchmarks/nab, on made-up corpora."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from obskit import anomaly

NAB_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "nab"
pytest.importorskip("numpy")
sys.path.insert(0, str(NAB_DIR))
try:
    import crossval
    import families
    import scoring
    from corpus import Series
finally:
    sys.path.remove(str(NAB_DIR))


def _corpus(seed: int) -> list[Series]:
    """Three categories of two files each; windows at random places."""
    rng = random.Random(seed)
    corpus = []
    for category in ("alpha", "beta", "gamma"):
        for k in range(2):
            n = rng.randrange(600, 1200)
            windows = []
            for start in sorted(rng.sample(range(200, n - 60, 100), 2)):
                windows.append((start, start + 40))
            values = [0.0] * n
            corpus.append(Series(f"{category}/f{k}.csv", [""] * n, [0.0] * n, values, windows))
    return corpus


def _scores(corpus: list[Series], seed: int) -> dict[str, list[float]]:
    rng = random.Random(seed)
    return {s.name: [round(rng.random(), 2) for _ in s.values] for s in corpus}


@pytest.mark.parametrize("seed", range(4))
def test_the_numpy_sweep_matches_the_reference_sweep(seed: int) -> None:
    corpus = _corpus(seed)
    scorer = crossval.Scorer(corpus)
    scores = _scores(corpus, seed)
    stacked = scorer.stack(scores)
    for held in ("alpha", "beta", "gamma"):
        train = [s.name for s in corpus if s.category != held]
        reference = scorer.sweep(scores, train)
        for profile in scoring.PROFILES:
            raw, threshold = scorer.fast_sweep(stacked, held, profile)
            assert raw == pytest.approx(reference[profile.name].raw, abs=1e-9)
            assert threshold == reference[profile.name].threshold


def test_held_out_picks_on_the_other_categories_and_pools_over_the_corpus() -> None:
    corpus = _corpus(7)
    scorer = crossval.Scorer(corpus)
    oracle = {s.name: [0.0] * len(s.values) for s in corpus}
    for series in corpus:
        for left, _ in series.windows:
            oracle[series.name][left] = 1.0
    noise = _scores(corpus, 1)
    held = crossval.leave_one_category_out(scorer, {"noise": noise, "oracle": oracle})
    for entry in held.values():
        assert entry.pooled == pytest.approx(100.0)
        assert {fold.candidate for fold in entry.folds} == {"oracle"}
        assert [fold.category for fold in entry.folds] == ["alpha", "beta", "gamma"]


def test_the_benchmark_gate_is_the_detectors_own_incident_rule() -> None:
    rng = random.Random(3)
    values = [50.0 + rng.gauss(0, 2) for _ in range(3000)]
    for start in (1200, 1260, 2000):
        for i in range(start, start + 30):
            values[i] += 25.0
    times = [1_700_000_000.0 + 300.0 * i for i in range(3000)]
    gated = anomaly.MultiScale(cooldown=40).update_many(values, times)
    raw = anomaly.MultiScale(cooldown=0).update_many(values, times)
    assert families.gate([r.score for r in raw], 0.25, 40) == [r.score for r in gated]
    assert sum(r.is_anomaly for r in gated) < sum(r.is_anomaly for r in raw)
