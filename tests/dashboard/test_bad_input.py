"""Missing, corrupt, empty and busy stores, and unknown ids: a clear page, never a traceback."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from obskit.dashboard import Dashboard
from obskit.dashboard._app import Request
from obskit.exporters import SQLiteExporter
from obskit.signals import ErrorEvent, LogRecord, SpanRecord

from .conftest import GROUP, NOW, TRACE

PAGES = ("/", "/logs", "/logs/tail?after=0", "/explore", f"/errors/{GROUP}", f"/traces/{TRACE}")


def _render(db: Path, path: str) -> tuple[int, str]:
    route, _, query = path.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&") if p)
    response = Dashboard(db, clock=lambda: NOW).handle(Request("GET", route, params))
    return response.status, response.body.decode()


@pytest.mark.parametrize("path", PAGES)
def test_missing_store_says_how_to_make_one(tmp_path: Path, path: str) -> None:
    status, html = _render(tmp_path / "nothing.db", path)
    assert status == 503
    assert "There is no obskit store at" in html and "SQLiteExporter" in html
    assert not (tmp_path / "nothing.db").exists()  # looking does not create it


@pytest.mark.parametrize("path", PAGES)
def test_corrupt_store_is_a_clear_page(tmp_path: Path, path: str) -> None:
    db = tmp_path / "corrupt.db"
    db.write_bytes(b"this is not a database" * 400)
    status, html = _render(db, path)
    assert status == 500
    assert "is not a readable obskit store" in html and "Traceback" not in html


def test_store_with_damaged_pages_is_a_clear_page(tmp_path: Path, store_path: Path) -> None:
    data = bytearray(store_path.read_bytes())
    for offset in range(4096, len(data), 4096):  # keep the header, smash every other page
        data[offset + 100 : offset + 400] = b"\xff" * 300
    db = tmp_path / "damaged.db"
    db.write_bytes(bytes(data))
    for path in PAGES:
        status, html = _render(db, path)
        assert status in (200, 404, 500), path
        assert "Traceback" not in html


@pytest.mark.parametrize("path", PAGES)
def test_empty_file_and_empty_database(tmp_path: Path, path: str) -> None:
    empty_file = tmp_path / "empty.db"
    empty_file.touch()
    empty_db = tmp_path / "fresh.db"
    sqlite3.connect(empty_db).close()
    for db in (empty_file, empty_db):
        status, html = _render(db, path)
        assert status in (200, 404), (db, path)
        assert "Traceback" not in html
    if path == "/":
        assert "This store holds no signals yet" in html


def test_pages_render_while_a_live_app_writes(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    writer = SQLiteExporter(db, clock=lambda: NOW)
    stop = threading.Event()
    written = []

    def write() -> None:
        i = 0
        while not stop.is_set() and i < 2000:  # bounded: about a second of writing
            batch = [LogRecord(NOW - 60 + i * 0.01, "info", f"record {i}", "live")]
            batch.append(SpanRecord(NOW - 60, "GET /", f"{i:032x}", f"{i:016x}", None, 3.0))
            batch.append(ErrorEvent(f"{i:032x}", NOW - 60, "error", GROUP, "Boom"))
            writer.export(batch)
            written.append(i)
            i += 1

    thread = threading.Thread(target=write)
    thread.start()
    try:
        rendered = 0
        while thread.is_alive() or rendered < 6:
            for path in PAGES:
                status, html = _render(db, path)
                assert status in (200, 404, 503), (path, html[:500])
                assert "Traceback" not in html
                rendered += 1
    finally:
        stop.set()
        thread.join(30)
        writer.shutdown()
    assert len(written) == 2000  # the writer never failed nor waited on the pages
    status, html = _render(db, f"/errors/{GROUP}")
    assert status == 200 and "2000 total" in html


def test_locked_store_asks_to_retry(tmp_path: Path, store_path: Path) -> None:
    holder = sqlite3.connect(store_path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = DELETE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        dashboard = Dashboard(store_path, clock=lambda: NOW)
        import obskit.store as store_module

        original = store_module.Store.__init__

        def quick(self: store_module.Store, path: object) -> None:
            original(self, path)  # type: ignore[arg-type]
            self._conn.execute("PRAGMA busy_timeout = 50")

        store_module.Store.__init__ = quick  # type: ignore[method-assign]
        try:
            response = dashboard.handle(Request("GET", "/", {}))
        finally:
            store_module.Store.__init__ = original  # type: ignore[method-assign]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    body = response.body.decode()
    assert response.status in (500, 503)
    assert "Traceback" not in body and ("busy" in body or "cannot be read" in body)


def test_unknown_paths_and_methods(dashboard: Dashboard) -> None:
    assert dashboard.handle(Request("GET", "/nope", {})).status == 404
    assert dashboard.handle(Request("GET", "/static/../../etc/passwd", {})).status == 404
    assert dashboard.handle(Request("POST", "/", {})).status == 405
    status = dashboard.handle(Request("GET", "/", {"range": "bogus", "end": "nan"})).status
    assert status == 200
