"""The NAB corpus on disk: ``data/<category>/<file>.csv`` and ``labels/combined_windows.json``.

Only the files present are loaded (a copy may hold a subset of NAB's 58 files). Timestamps are
kept as NAB writes them (``YYYY-MM-DD HH:MM:SS``) and as UNIX seconds (read as UTC).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_ROOT", "Series", "categories", "find_root", "load_corpus"]

#: Where the harness looks for NAB when no ``--nab`` is given: ``shared/nab`` beside the
#: repository (a checkout in a deeper work tree looks one level further up, and so on).
DEFAULT_ROOT = Path("shared") / "nab"


def find_root(repo_root: Path) -> Path | None:
    """The first ``<parent>/shared/nab`` above ``repo_root`` that holds a corpus, else None."""
    for parent in repo_root.resolve().parents:
        candidate = parent / DEFAULT_ROOT
        if (candidate / "labels" / "combined_windows.json").is_file():
            return candidate
    return None


@dataclass(slots=True)
class Series:
    """One NAB file: its name (``category/file.csv``), rows and labelled windows (row indices)."""

    name: str
    stamps: list[str]
    times: list[float]
    values: list[float]
    windows: list[tuple[int, int]]

    @property
    def category(self) -> str:
        """NAB's category: the folder of the file (``realKnownCause``, ...)."""
        return self.name.split("/", 1)[0]

    @property
    def value_range(self) -> tuple[float, float]:
        """The file's minimum and maximum: the hint NAB hands its detectors."""
        return min(self.values), max(self.values)

    @property
    def labels(self) -> list[int]:
        """1 for rows inside a window, else 0 (the ``label`` column of NAB result files)."""
        out = [0] * len(self.values)
        for left, right in self.windows:
            for i in range(left, right + 1):
                out[i] = 1
        return out


def categories(corpus: list[Series]) -> dict[str, list[Series]]:
    """The corpus grouped by NAB category (the folder of each file), in name order."""
    groups: dict[str, list[Series]] = {}
    for series in corpus:
        groups.setdefault(series.category, []).append(series)
    return groups


def load_corpus(root: Path | None) -> list[Series]:
    """Every data file under ``root/data`` that the labels file knows, sorted by name."""
    if root is None:
        raise SystemExit("no NAB corpus found in shared/nab beside the repository; pass --nab PATH")
    labels_path = root / "labels" / "combined_windows.json"
    data_dir = root / "data"
    if not labels_path.is_file() or not data_dir.is_dir():
        raise SystemExit(
            f"no NAB corpus at {root} (expected data/ and labels/combined_windows.json); "
            "pass --nab PATH"
        )
    windows = json.loads(labels_path.read_text())
    corpus = []
    for name in sorted(windows):
        path = data_dir / name
        if path.is_file():
            corpus.append(_load_series(name, path, windows[name]))
    return corpus


def _load_series(name: str, path: Path, raw_windows: list[list[str]]) -> Series:
    """Read one CSV and turn window edges (timestamps) into row indices."""
    stamps: list[str] = []
    values: list[float] = []
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for row in reader:
            stamps.append(row[0])
            values.append(float(row[1]))
    index = {stamp: i for i, stamp in enumerate(stamps)}
    windows = [(index[left[:19]], index[right[:19]]) for left, right in raw_windows]
    times = [
        dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.timezone.utc).timestamp()
        for stamp in stamps
    ]
    return Series(name, stamps, times, values, windows)
