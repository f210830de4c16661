"""benchmarks/nab/run.py end to end, on a made-up corpus small enough for the test suite."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import json
import sys
from pathlib import Path

import pytest

NAB_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "nab"


def _write_corpus(root: Path) -> None:
    """Two files of one category: a flat line with a step inside the window, and no window."""
    start = dt.datetime(2014, 4, 1)
    labels: dict[str, list[list[str]]] = {}
    for name, step_at in (("with_step.csv", 600), ("quiet.csv", None)):
        path = root / "data" / "synthetic" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        stamps = [(start + dt.timedelta(minutes=5 * i)).isoformat(sep=" ") for i in range(1000)]
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["timestamp", "value"])
            for i, stamp in enumerate(stamps):
                jump = 30.0 if step_at is not None and i >= step_at else 0.0
                writer.writerow([stamp, 10.0 + (i % 3) + jump])
        windows = [[stamps[550] + ".000000", stamps[650] + ".000000"]] if step_at else []
        labels[f"synthetic/{name}"] = windows
    labels["synthetic/missing.csv"] = []  # listed in the labels, absent on disk: skipped
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels))
    board = {"null": dict.fromkeys(("standard", "reward_low_FP_rate", "reward_low_FN_rate"), 0.0)}
    (root / "scoreboard_subset.json").write_text(json.dumps(board))


def test_run_scores_a_corpus_and_writes_nab_result_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_corpus(tmp_path)
    sys.path.insert(0, str(NAB_DIR))
    try:
        spec = importlib.util.spec_from_file_location("nab_run", NAB_DIR / "run.py")
        assert spec is not None and spec.loader is not None
        run = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(run)
        code = run.main(
            ["--nab", str(tmp_path), "--detectors", "range", "--results", str(tmp_path / "out")]
        )
    finally:
        sys.path.remove(str(NAB_DIR))
    assert code == 0
    out = capsys.readouterr().out
    assert "2 files, 1 windows, 2,000 points" in out
    [hinted] = [line for line in out.splitlines() if line.startswith("nab (min/max hint)")]
    assert hinted.split()[3] == "range"
    assert float(hinted.split()[4]) > 80  # the step is caught at the window's centre
    result = tmp_path / "out" / "nab" / "range" / "synthetic" / "range_with_step.csv"
    with result.open() as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == ["timestamp", "value", "anomaly_score", "label"]
    assert len(lines) == 1001 and lines[551][3] == "1" and lines[549][3] == "0"
