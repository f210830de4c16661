"""Dashboard pages over a generated week-long store: render time per page and time range.

The store (see ``_dashboard_store.py``) holds 7 days of a busy shop: error groups, health
reports, alert changes, anomalies and metric rollups for the whole week, request spans, and log
records at 10,000 a minute for the newest ``--busy-minutes`` (a thin stream before that). Every
page query walks an index over the chosen range or reads a bounded number of the newest rows, so
render times do not grow with the number of rows: run with a larger ``--busy-minutes`` to see
it (``--busy-minutes 10080`` is the full week at 10,000 a minute: about 100 million rows, ~12 GB,
~8 minutes to generate here).

Each page is rendered in-process (``Dashboard.handle``: open the store, query, render HTML),
best of ``--repeat`` runs. Beside the pages, in the same run: ``obskit report`` (the text
summary of the same store) and an unbounded text search (the same filter without the scan
budget the logs page uses).

    python benchmarks/bench_dashboard.py [--busy-minutes 60] [--repeat 3] [--db PATH]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _dashboard_store import generate
from _harness import print_table

from obskit import store
from obskit.dashboard import Dashboard
from obskit.dashboard._app import Request

RANGES = ("15m", "1h", "24h", "7d")


def _best_ms(fn, repeat: int, clock=time.perf_counter) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        began = clock()
        fn()
        best = min(best, (clock() - began) * 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--busy-minutes", type=int, default=60)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", help="where to write the store (default: a temporary file)")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="obskit-bench-dashboard-")
    path = Path(args.db) if args.db else Path(folder) / "week.db"
    now = time.time()
    began = time.perf_counter()
    parts = generate(path, now=now, days=args.days, busy_minutes=args.busy_minutes)
    total = time.perf_counter() - began
    with store.open(path) as db:
        counts = db.counts()
        group = db.query("SELECT fingerprint FROM error_groups ORDER BY count DESC LIMIT 1")[0][0]
        trace = db.query("SELECT trace_id FROM spans ORDER BY ts DESC LIMIT 1")[0][0]
    size_mb = (
        sum(os.path.getsize(str(path) + s) for s in ("", "-wal") if os.path.exists(str(path) + s))
        / 1e6
    )
    print(f"store: {path} ({size_mb:,.0f} MB), generated in {total:.1f} s")
    print_table(
        "What the store holds",
        ["table", "rows"],
        [[table, f"{n:,}"] for table, n in counts.items() if n],
    )
    print_table("Generation", ["part", "seconds"], [[k, v] for k, v in parts.items()])

    dashboard = Dashboard(path, clock=lambda: now)
    pages = {
        "overview": ("/", {}),
        "error group": (f"/errors/{group}", {}),
        "trace": (f"/traces/{trace}", {}),
        "logs": ("/logs", {}),
        "logs level>=error": ("/logs", {"level": "error"}),
        "logs text search": ("/logs", {"q": "inventory"}),
        "logs by request id": ("/logs", {"request_id": "r-12345"}),
        "logs live tail": ("/logs/tail", {"after": str(counts["logs"] - 500)}),
        "metrics explorer": ("/explore", {"metric": "queue.depth", "by": "queue"}),
    }
    rows = []
    cpu_rows = []
    worst = 0.0
    for label, (route, params) in pages.items():
        cells: list[object] = [label]
        cpu_cells: list[object] = [label]
        for name in RANGES:
            request = Request("GET", route, {**params, "range": name})
            status = dashboard.handle(request).status
            assert status == 200, (label, name, status)
            render = lambda request=request: dashboard.handle(request)  # noqa: E731
            ms = _best_ms(render, args.repeat)
            worst = max(worst, ms)
            cells.append(ms)
            cpu_cells.append(_best_ms(render, args.repeat, time.process_time))
        rows.append(cells)
        cpu_rows.append(cpu_cells)

    def report() -> None:
        with store.open(path) as db:
            from obskit._store_report import print_report

            print_report(db, io.StringIO())

    def unbounded_search() -> None:
        with store.open(path) as db:
            db.logs(contains="no such text", since=now - 7 * 86400, limit=200)

    rows.append(["(peer) obskit report, text", _best_ms(report, 1), "", "", ""])
    unbounded = _best_ms(unbounded_search, 1)
    rows.append(["(peer) text search, no scan budget, 7d", "", "", "", unbounded])
    print_table(f"Render time per page, ms (best of {args.repeat})", ["page", *RANGES], rows)
    print_table(
        f"CPU time per page, ms (best of {args.repeat}; what a page costs when the machine is "
        "not shared)",
        ["page", *RANGES],
        cpu_rows,
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nslowest page: {worst:.0f} ms wall ({'under' if worst < 1000 else 'OVER'} 1 s); "
        f"load average {load:.1f} on {os.cpu_count()} CPUs"
    )
    if not args.db:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
