"""Every query a page runs is an index range or a bounded walk, on a generated busy store.

The benchmark's generator writes a day of a busy shop; each page is rendered for each range
with SQLite's trace hook on, and every statement's query plan is checked: no full scan of the
tables that grow with traffic (logs, spans, errors, metrics), and a full index walk only where a
LIMIT stops it early.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from obskit import store as store_module
from obskit.dashboard import Dashboard
from obskit.dashboard._app import Request

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
BIG_TABLES = ("logs", "spans", "errors", "metrics")


@pytest.fixture(scope="module")
def busy_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from _dashboard_store import generate  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(BENCHMARKS))
    path = tmp_path_factory.mktemp("busy") / "busy.db"
    now = 1_768_478_400.0
    generate(path, now=now, days=1.0, busy_minutes=3, requests_per_minute=300)
    return path, now


def _pages(db: Path) -> list[tuple[str, dict[str, str]]]:
    with store_module.open(db) as store:
        group = store.query("SELECT fingerprint FROM error_groups LIMIT 1")[0][0]
        trace = store.query("SELECT trace_id FROM spans ORDER BY ts DESC LIMIT 1")[0][0]
    return [
        ("/", {}),
        (f"/errors/{group}", {}),
        (f"/traces/{trace}", {}),
        ("/logs", {}),
        ("/logs", {"level": "error", "logger": "shop.search", "q": "served"}),
        ("/logs", {"request_id": "r-7", "trace_id": trace}),
        ("/logs/tail", {"after": "10"}),
        ("/explore", {"metric": "queue.depth", "by": "queue", "agg": "max"}),
    ]


def test_page_queries_use_indexes(busy_store: tuple[Path, float], monkeypatch) -> None:
    db, now = busy_store
    statements: list[str] = []
    original = store_module.Store.__init__

    def traced(self: store_module.Store, path: object) -> None:
        original(self, path)  # type: ignore[arg-type]
        self._conn.set_trace_callback(statements.append)

    monkeypatch.setattr(store_module.Store, "__init__", traced)
    dashboard = Dashboard(db, clock=lambda: now)
    for path, params in _pages(db):
        for name in ("15m", "24h", "7d"):
            response = dashboard.handle(Request("GET", path, {**params, "range": name}))
            assert response.status == 200, (path, name)
    checked = 0
    plans = sqlite3.connect(db)
    for sql in {s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))}:
        plan = " | ".join(row[3] for row in plans.execute("EXPLAIN QUERY PLAN " + sql))
        for table in BIG_TABLES:
            assert not re.search(rf"\bSCAN {table}\b(?! USING)", plan), (sql, plan)
            if re.search(rf"\bSCAN {table} USING", plan):
                assert "LIMIT" in sql.upper(), (sql, plan)
        checked += 1
    assert checked >= 20


def test_pages_render_fast_on_the_busy_store(busy_store: tuple[Path, float]) -> None:
    """A smoke bound only (a shared CI machine): the benchmark measures the real figures."""
    db, now = busy_store
    dashboard = Dashboard(db, clock=lambda: now)
    for path, params in _pages(db):
        began = time.perf_counter()
        assert dashboard.handle(Request("GET", path, {**params, "range": "7d"})).status == 200
        assert time.perf_counter() - began < 10, path


def test_the_benchmark_runs_and_prints_its_table() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_dashboard.py"), "--days", "0.05",
         "--busy-minutes", "2", "--repeat", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for row in ("overview", "error group", "logs text search", "(peer) obskit report"):
        assert row in done.stdout
