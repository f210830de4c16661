"""Score obskit's detectors on the Numenta Anomaly Benchmark, in-sample and held out by category.

    python benchmarks/nab/run.py                       # every detector, both protocols
    python benchmarks/nab/run.py --detectors default --protocols nab --folds
    python benchmarks/nab/run.py --nab /path/to/NAB --results out/   # also write result files

Protocols: ``nab`` hands each detector the file's min and max first (``value_range``), as NAB
gave its published detectors (``inputMin`` / ``inputMax``); ``strict`` gives nothing, as in a
live process. Every row has two halves: **in-sample** (the shipped configuration, NAB's
threshold swept over the whole corpus, as NAB scores) and **held-out** (leave one category out:
configuration and threshold chosen on the other categories, applied to it; see
``crossval.py``). "own flags" is the standard score of the detector's own ``is_anomaly``
(its threshold; nothing swept, nothing tuned on NAB). The published entries are re-scored on
the same files (``scoreboard_subset.json``); they were tuned with the whole corpus in view, so
they compare with the in-sample half.

The NAB data is read from ``shared/nab`` beside the repository (or a parent of it) unless
``--nab`` says otherwise; it is never copied into the repository. Detector outputs are cached
per configuration under ``--cache`` (keyed by the detector source and the corpus), so a second
run only scores.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import Series, find_root, load_corpus  # noqa: E402
from crossval import HeldOut, Scorer, leave_one_category_out  # noqa: E402
from families import FAMILIES, Family, gate  # noqa: E402
from harness import PROTOCOLS, Run, run_detector, write_results  # noqa: E402
from scoring import PROFILES, ProfileResult  # noqa: E402

from obskit import anomaly  # noqa: E402

REPO_ROOT = HERE.parents[1]
SOURCE = REPO_ROOT / "src" / "obskit" / "anomaly"
LABELS = {"nab": "nab (min/max hint)", "strict": "strict streaming"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nab", type=Path, default=find_root(REPO_ROOT), help="NAB root")
    parser.add_argument("--detectors", default=",".join(FAMILIES), help="comma-separated")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS), help="nab,strict")
    parser.add_argument("--results", type=Path, help="write NAB result files under this dir")
    parser.add_argument("--cache", type=Path, default=_default_cache(), help="detector outputs")
    parser.add_argument("--no-cache", action="store_true", help="run every configuration")
    parser.add_argument("--folds", action="store_true", help="print each held-out fold")
    args = parser.parse_args(argv)

    corpus = load_corpus(args.nab)
    scorer = Scorer(corpus)
    windows = sum(len(series.windows) for series in corpus)
    points = sum(len(series.values) for series in corpus)
    groups = ", ".join(f"{name} ({len(files)})" for name, files in sorted(scorer.groups.items()))
    print(f"NAB corpus: {len(corpus)} files, {windows} windows, {points:,} points")
    print(f"categories: {groups}\n")
    cache = None if args.no_cache else args.cache

    rows: list[tuple[str, str, Any, Any, str]] = []
    published = json.loads((args.nab / "scoreboard_subset.json").read_text())
    for name, scores in sorted(published.items(), key=lambda item: -item[1]["standard"]):
        rows.append(("published", name, scores, None, "-"))
    for name, run in _scorer_checks(corpus, args.nab):
        rows.append(("scorer check", name, scorer.sweep(run.scores), None, "-"))
    details: list[tuple[str, dict[str, HeldOut]]] = []
    for protocol in args.protocols.split(","):
        for name in args.detectors.split(","):
            family = FAMILIES[name]
            shipped, candidates = _family_runs(name, family, corpus, protocol, cache)
            if args.results is not None:
                write_results(shipped, corpus, args.results / protocol)
            held = leave_one_category_out(scorer, candidates)
            own = _own_flags(scorer, shipped, name, family)
            rows.append(
                (
                    LABELS[protocol],
                    name,
                    scorer.sweep(shipped.scores),
                    held,
                    f"{own:.2f}  {shipped.points_per_second:>9,.0f}",
                )
            )
            details.append((f"{name}, {LABELS[protocol]}", held))
    _print_table(rows)
    if args.folds:
        for title, held in details:
            _print_folds(title, held)
    return 0


def _family_runs(
    name: str, family: Family, corpus: list[Series], protocol: str, cache: Path | None
) -> tuple[Run, dict[str, dict[str, list[float]]]]:
    """The shipped configuration run afresh (timed), and every candidate's scores (cached)."""
    raw: dict[str, dict[str, list[float]]] = {}
    candidates: dict[str, dict[str, list[float]]] = {}
    shipped_label = family.shipped
    if name.startswith("default"):
        shipped = run_detector("default", anomaly.default, corpus, protocol)
    else:
        shipped = run_detector(name, family.candidates[shipped_label].factory, corpus, protocol)
    for label, candidate in family.candidates.items():
        if candidate.threshold is None:
            candidates[label] = shipped.scores if label == shipped_label else {}
            continue
        if candidate.key not in raw:
            raw[candidate.key] = _cached_run(
                candidate.key, candidate.factory, corpus, protocol, cache
            )
        candidates[label] = {
            file: [
                round(score, 6) for score in gate(scores, candidate.threshold, candidate.cooldown)
            ]
            for file, scores in raw[candidate.key].items()
        }
    if name.startswith("default") and candidates[shipped_label] != shipped.scores:
        print("warning: default() differs from its grid candidate; the grid is stale\n")
    candidates = {label: scores for label, scores in candidates.items() if scores}
    return shipped, candidates


def _own_flags(scorer: Scorer, shipped: Run, name: str, family: Family) -> float:
    """The standard score of the detector's own flags: its threshold, nothing swept or tuned."""
    shipped_factory = family.candidates[family.shipped].factory
    factory = anomaly.default if name.startswith("default") else shipped_factory
    threshold = factory(None).threshold
    return scorer.at(shipped.scores, scorer.names(), PROFILES[0], threshold).normalised


def _cached_run(
    key: str, factory: Any, corpus: list[Series], protocol: str, cache: Path | None
) -> dict[str, list[float]]:
    """Raw (ungated) scores of one configuration, from the cache when the code is unchanged."""
    digest = hashlib.sha256()
    for path in sorted(SOURCE.glob("*.py")):
        digest.update(path.read_bytes())
    digest.update(f"{key}|{protocol}|".encode())
    for series in corpus:
        digest.update(f"{series.name}:{len(series.values)}|".encode())
    path = None if cache is None else cache / f"{digest.hexdigest()[:24]}.json"
    if path is not None and path.is_file():
        loaded: dict[str, list[float]] = json.loads(path.read_text())
        return loaded
    scores = run_detector(key, factory, corpus, protocol, rounded=False).scores
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(scores))
    return scores


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "obskit-nab"


def _scorer_checks(corpus: list[Series], root: Path) -> list[tuple[str, Run]]:
    """NAB's own random-detector output (when the copy has it) and a window-start oracle."""
    checks = []
    reference = root / "reference" / "random"
    if reference.is_dir():
        checks.append(
            ("random (NAB's output)", Run("random", "-", read_reference(reference, corpus), 0.0, 0))
        )
    oracle: dict[str, list[float]] = {}
    for series in corpus:
        scores = [0.0] * len(series.values)
        for left, _ in series.windows:
            scores[left] = 1.0
        oracle[series.name] = scores
    checks.append(("fires at window starts", Run("oracle", "-", oracle, 0.0, 0)))
    return checks


def read_reference(directory: Path, corpus: list[Series]) -> dict[str, list[float]]:
    """NAB result files (``timestamp,anomaly_score``), one per corpus file."""
    scores: dict[str, list[float]] = {}
    for series in corpus:
        with (directory / series.name).open(newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            scores[series.name] = [float(row[1]) for row in reader]
    return scores


def _print_table(rows: list[tuple[str, str, Any, Any, str]]) -> None:
    names = ("standard", "low FP", "low FN")
    half = "".join(f"{name:>9}" for name in names)
    print(f"{'':<20} {'':<24}{'in-sample':^27}  {'held out (by category)':^27}{'own':>7}")
    print(f"{'protocol':<20} {'detector':<24}{half}  {half}{'flags':>7}{'points/s':>11}")
    print("-" * 129)
    previous = None
    for protocol, name, scores, held, speed in rows:
        if previous is not None and protocol != previous:
            print()
        previous = protocol
        inside = "".join(f"{_value(scores[profile.name]):>9.2f}" for profile in PROFILES)
        if held is None:
            outside = f"{'':>27}"
        else:
            outside = "".join(f"{held[profile.name].pooled:>9.2f}" for profile in PROFILES)
        print(f"{protocol:<20} {name:<24}{inside}  {outside}{speed:>18}")


def _print_folds(title: str, held: dict[str, HeldOut]) -> None:
    """Each fold: what was chosen without the category, and how it scored on it."""
    print(f"\n{title}: held-out folds")
    print(
        f"{'profile':<20}{'held-out category':<24}{'windows':>8}{'det.':>6}{'FP':>5}{'score':>8}"
        f"{'train':>8}  chosen"
    )
    for profile in PROFILES:
        entry = held[profile.name]
        for fold in entry.folds:
            score = f"{fold.held_out.normalised:8.2f}" if fold.windows else f"{'-':>8}"
            print(
                f"{profile.name:<20}{fold.category:<24}{fold.windows:>8}"
                f"{fold.held_out.detected_windows:>6}{fold.held_out.false_positives:>5}{score}"
                f"{fold.train:>8.2f}  {fold.candidate} (threshold {fold.threshold:.4f})"
            )
        print(
            f"{'':<20}{'pooled / mean of categories':<43}{entry.pooled:>8.2f}"
            f"{entry.category_mean:>8.2f}"
        )


def _value(score: ProfileResult | float) -> float:
    return score if isinstance(score, (int, float)) else score.normalised


if __name__ == "__main__":
    raise SystemExit(main())
