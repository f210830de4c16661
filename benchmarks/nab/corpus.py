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

__all__ = ["DEFAULT_ROOT", "Series", "load_corpus"]

#: Where the harness looks for NAB when no ``--nab`` is given, relative to the repository root.
DEFAULT_ROOT = Path("..") / "shared" / "nab"


@dataclass(slots=True)
class Series:
    """One NAB file: its name (``category/file.csv``), rows and labelled windows (row indices)."""

    name: str
    stamps: list[str]
    times: list[float]
    values: list[float]
    windows: list[tuple[int, int]]

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


def load_corpus(root: Path) -> list[Series]:
    """Every data file under ``root/data`` that the labels file knows, sorted by name."""
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
