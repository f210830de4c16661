"""Leave-one-category-out cross-validation: how a tuned detector does on a category it never saw.

A detector *family* is a few candidate configurations of one detector (one candidate for a plain
detector, a small grid for the default). Two figures per family and profile:

* **in-sample**: the shipped candidate, NAB's threshold swept over the whole corpus (NAB's
  own protocol: every global choice made on the data it is scored on);
* **held-out**: for each category, the candidate *and* the threshold that score best on the other
  categories are applied unchanged to it. The held-out raw scores of all folds are added and
  normalised over the whole corpus, so the figure compares with the in-sample one; each
  category's own held-out score is kept too (a category without windows has no score, only
  false positives).

Nothing is ever chosen per file. The held-out figure estimates what the tuning *procedure* is
worth on data it has not seen; the shipped configuration is the one it picks on everything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy
from corpus import Series, categories
from scoring import PROFILES, Profile, ProfileResult, ScoredRows, score_at, score_corpus, score_rows

__all__ = ["Fold", "HeldOut", "Scorer", "leave_one_category_out"]

Scores = Mapping[str, Sequence[float]]


class Scorer:
    """NAB scoring over any set of the corpus' categories, each file's weights computed once.

    The threshold sweeps of the cross-validation run on numpy arrays (every candidate is swept
    once per fold); :func:`scoring.score_corpus` stays the reference, and the two agree.
    """

    def __init__(self, corpus: Sequence[Series]) -> None:
        self.corpus = list(corpus)
        self.groups = categories(self.corpus)
        self._weights: dict[str, tuple[int, ScoredRows]] = {}
        sigmoids: list[float] = []
        windows: list[int] = []
        kinds: list[int] = []
        order = sorted(self.groups)
        base = 0
        for series in self.corpus:
            blank = score_rows([0.0] * len(series.values), series.windows, base)
            self._weights[series.name] = (len(series.values) - len(blank.scores), blank)
            sigmoids.extend(blank.sigmoids)
            windows.extend(-1 if window is None else window for window in blank.windows)
            kinds.extend([order.index(series.category)] * len(blank.scores))
            base += len(series.windows)
        self._sigmoids = numpy.array(sigmoids)
        self._windows = numpy.array(windows, dtype=numpy.int64)
        self._categories = numpy.array(kinds, dtype=numpy.int64)
        self._order = order

    def windows(self, names: Sequence[str]) -> int:
        """Labelled windows in the files ``names``."""
        chosen = set(names)
        return sum(len(series.windows) for series in self.corpus if series.name in chosen)

    def names(self, category: str | None = None) -> list[str]:
        if category is None:
            return [series.name for series in self.corpus]
        return [series.name for series in self.groups[category]]

    def rows(self, scores: Scores, names: Sequence[str]) -> list[ScoredRows]:
        """The scorable rows of ``names`` with ``scores`` (probation dropped)."""
        out = []
        for name in names:
            skip, blank = self._weights[name]
            out.append(
                ScoredRows(
                    list(scores[name][skip:]), blank.sigmoids, blank.windows, blank.window_count
                )
            )
        return out

    def sweep(self, scores: Scores, names: Sequence[str] | None = None) -> dict[str, ProfileResult]:
        """NAB's three profiles, the threshold swept over ``names`` (every file by default)."""
        names = self.names() if names is None else names
        return score_corpus(self.rows(scores, names), self.windows(names))

    def at(
        self, scores: Scores, names: Sequence[str], profile: Profile, threshold: float
    ) -> ProfileResult:
        """One profile's score of ``names`` at a fixed threshold."""
        return score_at(self.rows(scores, names), self.windows(names), profile, threshold)

    def stack(self, scores: Scores) -> numpy.ndarray:
        """Every scorable row's score, in corpus order (what :meth:`fast_sweep` takes)."""
        parts = [scores[series.name][self._weights[series.name][0] :] for series in self.corpus]
        return numpy.concatenate([numpy.asarray(part, dtype=float) for part in parts])

    def fast_sweep(
        self, stacked: numpy.ndarray, without: str, profile: Profile
    ) -> tuple[float, float]:
        """Best ``(raw, threshold)`` over every category but ``without`` (numpy, exact)."""
        keep = self._categories != self._order.index(without)
        score, sigmoid, window = stacked[keep], self._sigmoids[keep], self._windows[keep]
        scorable = len(numpy.unique(window[window >= 0]))
        if not len(score):
            return 0.0, math.inf
        order = numpy.argsort(-score, kind="stable")
        score, sigmoid, window = score[order], sigmoid[order], window[order]
        gain = numpy.where(window < 0, sigmoid * profile.fp, 0.0)
        inside = numpy.flatnonzero(window >= 0)
        if len(inside):
            # Per window, the best credit so far in sweep order: a cumulative max per segment.
            by_window = inside[numpy.argsort(window[inside], kind="stable")]
            ids = window[by_window]
            credit = sigmoid[by_window] * profile.tp
            best = numpy.maximum.accumulate(credit + 4.0 * ids) - 4.0 * ids
            first = numpy.r_[True, ids[1:] != ids[:-1]]
            step = numpy.where(first, best + profile.fn, best - numpy.r_[0.0, best[:-1]])
            gain[by_window] += step
        total = -profile.fn * scorable + numpy.cumsum(gain)
        ends = numpy.r_[score[1:] != score[:-1], True]
        candidates = total[ends]
        if not len(candidates):
            return -profile.fn * scorable, math.inf
        index = int(numpy.argmax(candidates))
        never = -profile.fn * scorable
        if candidates[index] <= never:
            return never, math.inf
        return float(candidates[index]), float(score[ends][index])


@dataclass(frozen=True, slots=True)
class Fold:
    """One held-out category: what was chosen without it, and how that scored on it."""

    category: str
    candidate: str
    threshold: float
    train: float  # normalised score on the other categories
    held_out: ProfileResult  # on this category, at that candidate and threshold
    windows: int


@dataclass(slots=True)
class HeldOut:
    """The leave-one-category-out result of one profile."""

    profile: str
    folds: list[Fold] = field(default_factory=list)
    pooled: float = 0.0  # held-out raw scores of every fold, normalised over the corpus

    @property
    def category_mean(self) -> float:
        """The mean of the held-out categories' own scores (categories with windows only)."""
        scored = [fold.held_out.normalised for fold in self.folds if fold.windows]
        return sum(scored) / len(scored) if scored else 0.0


def leave_one_category_out(scorer: Scorer, candidates: Mapping[str, Scores]) -> dict[str, HeldOut]:
    """Hold each category out in turn; choose candidate and threshold on the rest, score it.

    ``candidates`` maps a label to the scores that configuration gave every file; on equal
    training scores the first candidate wins (put the shipped one first).
    """
    results = {profile.name: HeldOut(profile.name) for profile in PROFILES}
    total_windows = scorer.windows(scorer.names())
    stacked = {label: scorer.stack(scores) for label, scores in candidates.items()}
    for category in sorted(scorer.groups):
        held = scorer.names(category)
        train_windows = total_windows - scorer.windows(held)
        for profile in PROFILES:
            best: tuple[float, str, float] | None = None
            for label, rows in stacked.items():
                raw, threshold = scorer.fast_sweep(rows, category, profile)
                if best is None or raw > best[0]:
                    best = (raw, label, threshold)
            assert best is not None
            raw, label, threshold = best
            outcome = scorer.at(candidates[label], held, profile, threshold)
            null = -profile.fn * train_windows
            perfect = profile.tp * train_windows
            trained = 100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0
            results[profile.name].folds.append(
                Fold(category, label, threshold, trained, outcome, scorer.windows(held))
            )
    for profile in PROFILES:
        entry = results[profile.name]
        raw = sum(fold.held_out.raw for fold in entry.folds)
        null, perfect = -profile.fn * total_windows, profile.tp * total_windows
        entry.pooled = 100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0
    return results
