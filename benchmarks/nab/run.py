"""Score obskit's detectors on the Numenta Anomaly Benchmark, beside NAB's published entries.

    python benchmarks/nab/run.py                       # every detector, both protocols
    python benchmarks/nab/run.py --detectors default --protocols nab
    python benchmarks/nab/run.py --nab /path/to/NAB --results out/   # also write result files

Protocols: ``nab`` hands each detector the file's min and max first (``value_range``), as NAB
gave its published detectors (``inputMin`` / ``inputMax``); ``strict`` gives nothing, as in a
live process. The NAB data is read from ``../shared/nab`` relative to the repository root
unless ``--nab`` says otherwise; it is never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import DEFAULT_ROOT, Series, load_corpus  # noqa: E402
from harness import PROTOCOLS, Run, run_detector, score_run, write_results  # noqa: E402
from scoring import PROFILES, ProfileResult, score_at, score_rows  # noqa: E402

from obskit import anomaly  # noqa: E402

REPO_ROOT = HERE.parents[1]
Hint = tuple[float, float] | None

#: The default's alert rationing, given to the single detectors too so that the rows compare
#: what each detector sees, not how often it repeats itself.
COOLDOWN = 120

#: Each obskit detector with its defaults (and COOLDOWN); only the hint changes by protocol.
DETECTORS: dict[str, Callable[[Hint], Any]] = {
    "default": anomaly.default,
    "ewma": lambda hint: anomaly.EWMA(cooldown=COOLDOWN, value_range=hint),
    "zscore": lambda hint: anomaly.RollingZScore(cooldown=COOLDOWN, value_range=hint),
    "mad": lambda hint: anomaly.MedianMAD(cooldown=COOLDOWN, value_range=hint),
    "seasonal": lambda hint: anomaly.Seasonal(cooldown=COOLDOWN, value_range=hint),
    "holtwinters": lambda hint: anomaly.HoltWinters(cooldown=COOLDOWN, value_range=hint),
    "cusum": lambda hint: anomaly.CUSUM(cooldown=COOLDOWN, value_range=hint),
    "context": lambda hint: anomaly.ContextNovelty(cooldown=COOLDOWN, value_range=hint),
    "range": lambda hint: anomaly.RangeNovelty(cooldown=COOLDOWN, value_range=hint),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nab", type=Path, default=REPO_ROOT / DEFAULT_ROOT, help="NAB root")
    parser.add_argument("--detectors", default=",".join(DETECTORS), help="comma-separated")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS), help="nab,strict")
    parser.add_argument("--results", type=Path, help="write NAB result files under this dir")
    parser.add_argument("--no-check", action="store_true", help="skip the scorer sanity rows")
    parser.add_argument(
        "--by-category", action="store_true", help="also break each run down by NAB category"
    )
    args = parser.parse_args(argv)

    corpus = load_corpus(args.nab)
    windows = sum(len(series.windows) for series in corpus)
    points = sum(len(series.values) for series in corpus)
    print(f"NAB corpus: {len(corpus)} files, {windows} windows, {points:,} points\n")
    rows: list[tuple[str, str, dict[str, ProfileResult] | dict[str, float], str]] = []

    published = json.loads((args.nab / "scoreboard_subset.json").read_text())
    for name, scores in sorted(published.items(), key=lambda item: -item[1]["standard"]):
        rows.append(("published", name, scores, "-"))
    if not args.no_check:
        for name, run in _scorer_checks(corpus):
            rows.append(("scorer check", name, score_run(run, corpus), "-"))
    breakdowns = []
    for protocol in args.protocols.split(","):
        for name in args.detectors.split(","):
            run = run_detector(name, DETECTORS[name], corpus, protocol)
            if args.results is not None:
                write_results(run, corpus, args.results / protocol)
            label = "nab (min/max hint)" if protocol == "nab" else "strict streaming"
            scores = score_run(run, corpus)
            rows.append((label, name, scores, f"{run.points_per_second:,.0f}"))
            breakdowns.append((f"{name}, {label}", run, scores["standard"].threshold))
    _print_table(rows)
    if args.by_category:
        for title, run, threshold in breakdowns:
            _print_categories(title, run, corpus, threshold)
    return 0


def _print_categories(title: str, run: Run, corpus: list[Series], threshold: float) -> None:
    """Standard-profile score per category, at the threshold chosen on the whole corpus."""
    print(f"\n{title}: standard profile by category (corpus threshold {threshold:.4f})")
    print(f"{'category':<24}{'files':>6}{'windows':>8}{'detected':>9}{'false pos':>10}{'score':>8}")
    standard = PROFILES[0]
    for category in sorted({series.name.split("/")[0] for series in corpus}):
        members = [series for series in corpus if series.name.startswith(category + "/")]
        files, base = [], 0
        for series in members:
            files.append(score_rows(run.scores[series.name], series.windows, base))
            base += len(series.windows)
        result = score_at(files, base, standard, threshold)
        score = f"{result.normalised:8.2f}" if base else f"{'-':>8}"
        print(
            f"{category:<24}{len(members):>6}{base:>8}{result.detected_windows:>9}"
            f"{result.false_positives:>10}{score}"
        )


def _scorer_checks(corpus: list[Series]) -> list[tuple[str, Run]]:
    """NAB's random detector (seed 42 per file, 3 decimals) and a window-start oracle."""
    random_scores: dict[str, list[float]] = {}
    oracle_scores: dict[str, list[float]] = {}
    for series in corpus:
        rng = random.Random(42)
        random_scores[series.name] = [round(rng.uniform(0, 1), 3) for _ in series.values]
        oracle = [0.0] * len(series.values)
        for left, _ in series.windows:
            oracle[left] = 1.0
        oracle_scores[series.name] = oracle
    return [
        ("random (NAB's)", Run("random", "-", random_scores, 0.0, 0)),
        ("fires at window starts", Run("oracle", "-", oracle_scores, 0.0, 0)),
    ]


def _print_table(rows: list[tuple[str, str, Any, str]]) -> None:
    header = f"{'protocol':<20} {'detector':<24}" + "".join(
        f"{profile.name:>20}" for profile in PROFILES
    )
    print(header + f"{'points/s':>12}")
    print("-" * (len(header) + 12))
    previous = None
    for protocol, name, scores, speed in rows:
        if previous is not None and protocol != previous:
            print()
        previous = protocol
        cells = "".join(f"{_value(scores[profile.name]):>20.2f}" for profile in PROFILES)
        print(f"{protocol:<20} {name:<24}{cells}{speed:>12}")


def _value(score: ProfileResult | float) -> float:
    return score if isinstance(score, float) else score.normalised


if __name__ == "__main__":
    raise SystemExit(main())
