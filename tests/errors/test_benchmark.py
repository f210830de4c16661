"""benchmarks/bench_errors.py keeps running (in quick mode) where sentry-sdk is installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_errors.py"


def test_the_error_benchmark_runs_and_prints_its_table() -> None:
    pytest.importorskip("sentry_sdk", reason="the benchmark needs the bench extra")
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    for row in ("bare raise/catch", "sentry-sdk capture_exception", "obskit add_breadcrumb"):
        assert row in done.stdout
