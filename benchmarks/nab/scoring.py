"""NAB scoring, reimplemented: windows, scaled sigmoid, profiles, threshold sweep, normalisation.

Follows the rules of the Numenta Anomaly Benchmark (``nab/sweeper.py``):

* the first ``min(floor(0.15 * n), 750)`` rows of a file are probation: not scored at all;
* a row is a detection when its score is ``>= threshold``;
* a window counts once, credited with its earliest detection at row ``i``:
  ``tp * f(p) / f(-1)`` with ``p = -(right - i + 1) / width``; an undetected window costs ``-fn``;
* every detection outside all windows costs ``fp * f(p)`` with
  ``p = |i - prev_right| / (prev_width - 1)`` after the closest preceding window, or ``-fp``
  when no window precedes it;
* ``f(p) = 2 / (1 + exp(5 p)) - 1``, and ``-1`` for ``p >= 3``;
* one threshold per detector and profile, the one maximising the corpus total;
* ``100 * (S - S_null) / (S_perfect - S_null)``, ``S_null = -fn * windows``,
  ``S_perfect = tp * windows``.

Pure Python and fast enough for the whole corpus (one sort per profile).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "PROFILES",
    "Profile",
    "ProfileResult",
    "ScoredRows",
    "probation_length",
    "scaled_sigmoid",
    "score_at",
    "score_corpus",
    "score_rows",
]


@dataclass(frozen=True, slots=True)
class Profile:
    """One NAB application profile: the weights of true positives, false positives, misses."""

    name: str
    tp: float
    fp: float
    fn: float


PROFILES: tuple[Profile, ...] = (
    Profile("standard", 1.0, 0.11, 1.0),
    Profile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    Profile("reward_low_FN_rate", 1.0, 0.11, 2.0),
)


def probation_length(rows: int) -> int:
    """Rows at the start of a file that NAB does not score: 15 %, at most 750."""
    return int(min(math.floor(0.15 * rows), 0.15 * 5000))


def scaled_sigmoid(position: float) -> float:
    """NAB's ``f(p)``: about 0.987 at the left edge of a window, 0 at its right, -1 far after."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


@dataclass(slots=True)
class ScoredRows:
    """The scorable rows of one file: score, unweighted sigmoid and window id (or None)."""

    scores: list[float]
    sigmoids: list[float]
    windows: list[int | None]
    window_count: int


def score_rows(
    scores: Sequence[float], windows: Sequence[tuple[int, int]], window_base: int = 0
) -> ScoredRows:
    """Weigh every row of one file against its windows (row index pairs, inclusive).

    Window ids are ``window_base + k`` so that several files can be merged into one sweep.
    """
    n = len(scores)
    probation = probation_length(n)
    max_tp = scaled_sigmoid(-1.0)
    out = ScoredRows([], [], [], 0)
    counted: set[int] = set()
    window_of = [-1] * n
    for k, (left, right) in enumerate(windows):
        for i in range(left, right + 1):
            window_of[i] = k
    prev_right: int | None = None
    prev_width = 0.0
    for i in range(n):
        k = window_of[i]
        if k >= 0:
            left, right = windows[k]
            width = float(right - left + 1)
            sigmoid = scaled_sigmoid(-(right - i + 1) / width) / max_tp
        elif prev_right is None:
            sigmoid = scaled_sigmoid(3.0)
        else:
            sigmoid = scaled_sigmoid(abs(prev_right - i) / (prev_width - 1.0))
        if k >= 0 and i == windows[k][1]:
            prev_right, prev_width = i, float(windows[k][1] - windows[k][0] + 1)
        if i < probation:
            continue
        out.scores.append(float(scores[i]))
        out.sigmoids.append(sigmoid)
        out.windows.append(window_base + k if k >= 0 else None)
        if k >= 0:
            counted.add(k)
    out.window_count = len(counted)
    return out


@dataclass(frozen=True, slots=True)
class ProfileResult:
    """The best threshold of one profile over a corpus, its raw and normalised score."""

    profile: str
    threshold: float
    raw: float
    normalised: float
    detected_windows: int
    false_positives: int


def score_corpus(files: Sequence[ScoredRows], total_windows: int) -> dict[str, ProfileResult]:
    """Sweep every distinct score as a threshold; return the best result per profile.

    ``total_windows`` is the number of labelled windows (NAB normalises on all of them, also
    those that fall inside probation and so can never be detected).
    """
    rows: list[tuple[float, float, int | None]] = []
    for scored in files:
        rows.extend(zip(scored.scores, scored.sigmoids, scored.windows, strict=True))
    rows.sort(key=lambda row: row[0], reverse=True)
    scorable = sum(scored.window_count for scored in files)
    return {profile.name: _sweep(rows, profile, scorable, total_windows) for profile in PROFILES}


def _sweep(
    rows: list[tuple[float, float, int | None]],
    profile: Profile,
    scorable_windows: int,
    total_windows: int,
) -> ProfileResult:
    """Lower the threshold one distinct score at a time, tracking the corpus total."""
    best_window: dict[int, float] = {}
    fp_total = 0.0
    fp_count = 0
    # "Never fire": every scorable window missed.
    total = -profile.fn * scorable_windows
    best = (total, math.inf, 0, 0)
    i = 0
    n = len(rows)
    while i < n:
        threshold = rows[i][0]
        while i < n and rows[i][0] == threshold:
            _, sigmoid, window = rows[i]
            if window is None:
                gain = sigmoid * profile.fp
                fp_total += gain
                total += gain
                fp_count += 1
            else:
                credit = sigmoid * profile.tp
                previous = best_window.get(window)
                if previous is None:
                    best_window[window] = credit
                    total += credit + profile.fn
                elif credit > previous:
                    best_window[window] = credit
                    total += credit - previous
            i += 1
        if total > best[0]:
            best = (total, threshold, len(best_window), fp_count)
    raw, threshold, detected, false_positives = best
    null = -profile.fn * total_windows
    perfect = profile.tp * total_windows
    normalised = 100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0
    return ProfileResult(profile.name, threshold, raw, normalised, detected, false_positives)


def score_at(
    files: Sequence[ScoredRows], total_windows: int, profile: Profile, threshold: float
) -> ProfileResult:
    """The score of ``files`` at a fixed threshold (e.g. the corpus one, on one category)."""
    rows = [
        row
        for scored in files
        for row in zip(scored.scores, scored.sigmoids, scored.windows, strict=True)
        if row[0] >= threshold
    ]
    scorable = sum(scored.window_count for scored in files)
    raw, detected, false_positives = _total(rows, profile, scorable)
    null, perfect = -profile.fn * total_windows, profile.tp * total_windows
    normalised = 100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0
    return ProfileResult(profile.name, threshold, raw, normalised, detected, false_positives)


def _total(
    rows: list[tuple[float, float, int | None]], profile: Profile, scorable_windows: int
) -> tuple[float, int, int]:
    """Raw score, detected windows and false positives when every row in ``rows`` fires."""
    best: dict[int, float] = {}
    total = -profile.fn * scorable_windows
    false_positives = 0
    for _, sigmoid, window in rows:
        if window is None:
            total += sigmoid * profile.fp
            false_positives += 1
        elif window not in best:
            best[window] = sigmoid * profile.tp
        else:
            best[window] = max(best[window], sigmoid * profile.tp)
    total += sum(credit + profile.fn for credit in best.values())
    return total, len(best), false_positives
