"""Run detectors over the NAB corpus, write NAB result files, score them.

A *factory* takes the protocol's range hint (``(low, high)`` or ``None``) and returns a fresh
detector with ``update(value, timestamp)`` returning an object with ``.score``. Every file gets
its own detector: NAB detectors never see two files.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpus import Series
from scoring import ProfileResult, score_corpus, score_rows

__all__ = ["PROTOCOLS", "Run", "run_detector", "score_run", "write_results"]

Factory = Callable[[tuple[float, float] | None], Any]

#: NAB protocol: the file's min and max are handed over first (as NAB's published entries had);
#: strict streaming: nothing is known before the first point.
PROTOCOLS = ("nab", "strict")


@dataclass(slots=True)
class Run:
    """The scores one detector gave every file of the corpus, and how long that took."""

    detector: str
    protocol: str
    scores: dict[str, list[float]]
    seconds: float
    points: int

    @property
    def points_per_second(self) -> float:
        return self.points / self.seconds if self.seconds > 0 else float("inf")


def run_detector(
    name: str, factory: Factory, corpus: Sequence[Series], protocol: str, *, rounded: bool = True
) -> Run:
    """Stream every file through a fresh detector, timing only the ``update`` calls.

    Scores are rounded to the six decimals NAB result files hold (``rounded=False`` keeps them
    whole, for a gate applied afterwards).
    """
    scores: dict[str, list[float]] = {}
    elapsed = 0.0
    points = 0
    for series in corpus:
        hint = series.value_range if protocol == "nab" else None
        detector = factory(hint)
        update = detector.update
        out: list[float] = []
        append = out.append
        started = time.perf_counter()
        for value, moment in zip(series.values, series.times, strict=True):
            append(update(value, moment).score)
        elapsed += time.perf_counter() - started
        points += len(out)
        # Scores are written with six decimals; score exactly what is written.
        scores[series.name] = [round(score, 6) for score in out] if rounded else out
    return Run(name, protocol, scores, elapsed, points)


def score_run(run: Run, corpus: Sequence[Series]) -> dict[str, ProfileResult]:
    """NAB's three profiles for one run (threshold swept over the whole corpus)."""
    files = []
    base = 0
    for series in corpus:
        files.append(score_rows(run.scores[series.name], series.windows, base))
        base += len(series.windows)
    return score_corpus(files, total_windows=base)


def write_results(run: Run, corpus: Sequence[Series], out_dir: Path) -> None:
    """NAB's result files: ``<out>/<detector>/<category>/<detector>_<file>.csv``."""
    for series in corpus:
        category, file_name = series.name.split("/", 1)
        path = out_dir / run.detector / category / f"{run.detector}_{file_name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["timestamp", "value", "anomaly_score", "label"])
            scores = run.scores[series.name]
            for stamp, value, score, label in zip(
                series.stamps, series.values, scores, series.labels, strict=True
            ):
                writer.writerow([stamp, repr(value), f"{score:.6f}", label])
