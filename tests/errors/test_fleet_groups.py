"""Fleet-wide error groups: several worker processes writing one SQLite store.

Four spawned processes (as four gunicorn or multiprocessing workers would be) run the same
application module, hit the same two bugs, and write one store; ``obskit errors`` then shows each
bug once, with the count summed over the workers and the distinct users of all of them.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from obskit import cli, store

from .conftest import CodeBase

WORKERS = 4
APP = """\
import obskit
from obskit.exporters import SQLiteExporter


def charge(order):
    prices = {}
    return prices[order]


def ship(parcels):
    return 10 / parcels


def serve(path, worker, charges, ships, start):
    clock = iter(range(start, start + 1000))
    obskit.init(service="shop", exporters=[SQLiteExporter(path)], install_hooks=False)
    obskit.errors._set_clock(lambda: float(next(clock)))
    for number in range(charges):
        try:
            charge(number)
        except KeyError as exc:
            obskit.capture_exception(exc, user={"id": f"w{worker}-u{number % 2}"})
    for _ in range(ships):
        try:
            ship(0)
        except ZeroDivisionError as exc:
            obskit.capture_exception(exc)
    obskit.shutdown()
"""


def run_workers(path: Path, charges: int, ships: int, start: int) -> None:
    """Run the app in ``WORKERS`` spawned processes at once, all writing ``path``."""
    spawn = multiprocessing.get_context("spawn")
    import fleet_app  # written by the test; spawned children import it by name

    workers = [
        spawn.Process(target=fleet_app.serve, args=(str(path), n, charges, ships, start))
        for n in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0] * WORKERS


def obskit_errors(*args: str) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["errors", *args]) == 0
    return out.getvalue().splitlines()


def test_workers_writing_one_store_show_each_bug_once_with_the_summed_count(
    codebase: Callable[[str], CodeBase], tmp_path: Path
) -> None:
    base = codebase("app")
    base.write("fleet_app", APP)
    base.load("fleet_app")
    db = tmp_path / "fleet.db"
    start = int(time.time()) - 3600  # event times come from a driven clock, within retention
    run_workers(db, charges=5, ships=3, start=start)

    lines = obskit_errors("--db", str(db))
    rows = [line.split() for line in lines if "KeyError" in line or "ZeroDivision" in line]
    assert len(rows) == 2  # each bug once
    charge_row, ship_row = sorted(rows, key=lambda row: "ZeroDivision" in " ".join(row))
    assert charge_row[:2] == [str(5 * WORKERS), str(2 * WORKERS)]  # count, distinct users
    assert ship_row[:2] == [str(3 * WORKERS), "0"]

    with store.open(db) as opened:
        groups = {group.title.split(":")[0]: group for group in opened.error_groups()}
        assert groups["KeyError"].count == 20 and groups["KeyError"].users == 8
        assert groups["KeyError"].first_seen == start
        assert groups["KeyError"].last_seen == start + 4
        assert len(opened.errors(fingerprint=groups["KeyError"].fingerprint, limit=100)) == 20
        resolved = groups["KeyError"].fingerprint

    assert obskit_errors("--db", str(db), "--resolve", resolved[:8]) == [f"resolved {resolved}"]
    run_workers(db, charges=1, ships=0, start=int(time.time()) + 60)  # the bug is back, later

    with store.open(db) as opened:
        groups = {group.fingerprint: group for group in opened.error_groups()}
        regressed = groups[resolved]
        assert regressed.status == "regressed" and regressed.regressions >= 1
        assert regressed.count == 20 + WORKERS
        assert [g.status for f, g in groups.items() if f != resolved] == ["unresolved"]
    assert any("regressed" in line for line in obskit_errors("--db", str(db)))


def test_resolving_an_unknown_group_says_so(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    from obskit.exporters import SQLiteExporter

    SQLiteExporter(db).export([])
    SQLiteExporter(db)._connection()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["errors", "--db", str(db), "--resolve", "abcdef12"]) == 1
    assert "no single group matches" in out.getvalue()


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
