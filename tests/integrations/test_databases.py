"""Database statements as client calls: sqlite3 through ``dbapi.wrap`` and SQLAlchemy over a
SQLite file through ``sqlalchemy.instrument``; spans, names, attributes, the duration histogram,
breadcrumbs, slow-statement warnings, and no parameter value in any exported signal."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

import obskit
from obskit import metrics
from obskit.exporters import InMemoryExporter
from obskit.integrations import dbapi
from obskit.integrations import sqlalchemy as obskit_sqlalchemy
from obskit.integrations._sql import summarise

from ..conftest import RecordingSink
from .conftest import flushed


def client_spans(memory: InMemoryExporter) -> list[Any]:
    return [s for s in flushed(memory).spans if s.span_kind == "client"]


@pytest.mark.parametrize(
    ("statement", "name", "operation", "collection", "query"),
    [
        (
            "SELECT * FROM items WHERE id = 42",
            "SELECT items",
            "SELECT",
            "items",
            "SELECT * FROM items WHERE id = ?",
        ),
        (
            "select name from shop.items where tag in ('a', 'b''c') -- by tag\n",
            "SELECT shop.items",
            "SELECT",
            "shop.items",
            "select name from shop.items where tag in (?, ?)",
        ),
        (
            'INSERT INTO "order lines" (qty, price) VALUES (3, -4.5e2)',
            "INSERT order lines",
            "INSERT",
            "order lines",
            'INSERT INTO "order lines" (qty, price) VALUES (?, ?)',
        ),
        (
            "UPDATE items SET price = 0x1F /* promo */ WHERE id = :id",
            "UPDATE items",
            "UPDATE",
            "items",
            "UPDATE items SET price = ? WHERE id = :id",
        ),
        (
            "DELETE FROM t2 WHERE note = $$it's$$",
            "DELETE t2",
            "DELETE",
            "t2",
            "DELETE FROM t2 WHERE note = ?",
        ),
        (
            "CREATE TABLE IF NOT EXISTS carts (id INTEGER)",
            "CREATE carts",
            "CREATE",
            "carts",
            "CREATE TABLE IF NOT EXISTS carts (id INTEGER)",
        ),
        ("BEGIN", "BEGIN", "BEGIN", None, "BEGIN"),
        ("  ", "sqlite", "", None, ""),
    ],
)
def test_statement_summary(
    statement: str, name: str, operation: str, collection: str | None, query: str
) -> None:
    info = summarise(statement, "sqlite")
    assert (info.name, info.operation, info.collection, info.text) == (
        name,
        operation,
        collection,
        query,
    )


def test_sqlite3_statements_are_client_spans_with_semconv_attributes(
    quiet_memory: InMemoryExporter, sink: RecordingSink, tmp_path: Path
) -> None:
    conn = dbapi.wrap(sqlite3.connect(tmp_path / "shop.db"))
    with obskit.request("import items") as request:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        with conn:
            conn.executemany("INSERT INTO items (name) VALUES (?)", [("pen",), ("ink",)])
        cursor = conn.cursor()
        cursor.execute("SELECT name FROM items WHERE id > ?", (0,))
        assert [row[0] for row in cursor] == ["pen", "ink"]
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (2,)
        with pytest.raises(sqlite3.OperationalError):
            conn.execute("SELECT * FROM missing")
    spans = client_spans(quiet_memory)
    assert [s.name for s in spans] == [
        "CREATE items",
        "INSERT items",
        "SELECT items",
        "SELECT items",
        "SELECT missing",
    ]
    assert all(s.trace_id == request.trace_id for s in spans)
    insert = spans[1].attributes
    assert insert == {
        "db.system": "sqlite",
        "db.operation.name": "INSERT",
        "db.collection.name": "items",
        "db.query.text": "INSERT INTO items (name) VALUES (?)",
        "db.operation.batch.size": 2,
    }
    assert spans[-1].status == "error"
    assert spans[-1].attributes["error.type"] == "OperationalError"
    durations = [
        labels for _, name, _, labels in sink.points if name == "db.client.operation.duration"
    ]
    assert len(durations) == 5
    assert durations[2] == {
        "db.system": "sqlite",
        "db.operation.name": "SELECT",
        "db.collection.name": "items",
    }
    assert durations[-1]["error.type"] == "OperationalError"


def test_statements_outside_a_trace_are_timed_without_spans(
    quiet_memory: InMemoryExporter, sink: RecordingSink
) -> None:
    conn = dbapi.wrap(sqlite3.connect(":memory:"))
    conn.execute("SELECT 1")
    assert client_spans(quiet_memory) == []
    assert [name for _, name, _, _ in sink.points] == ["db.client.operation.duration"]


def test_a_statement_leaves_a_breadcrumb_on_the_next_error(
    quiet_memory: InMemoryExporter,
) -> None:
    conn = dbapi.wrap(sqlite3.connect(":memory:"))
    with obskit.request("checkout"):
        conn.execute("SELECT 40 + 2")
        obskit.capture_message("after the query", level="error")
    [event] = flushed(quiet_memory).errors
    [crumb] = [b for b in event.breadcrumbs if b["category"] == "query"]
    assert crumb["message"] == "SELECT ? + ?" and crumb["data"]["duration_ms"] >= 0


def test_slow_statement_logs_one_warning_and_capture_groups_per_statement(
    tmp_path: Path,
) -> None:
    memory = InMemoryExporter()
    obskit.init(exporters=[memory], install_hooks=False, slow_ms=0, slow_capture=True)
    engine = obskit_sqlalchemy.instrument(create_engine(f"sqlite:///{tmp_path / 'shop.db'}"))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE items (id INTEGER, name TEXT)"))
        for _ in range(3):
            conn.execute(text("SELECT name FROM items WHERE id = :id"), {"id": 7})
    flushed(memory)
    slow = [r for r in memory.logs if r.event == "slow query: SELECT items"]
    assert len(slow) == 3 and {r.level for r in slow} == {"warning"}
    assert slow[0].fields["threshold_ms"] == 0
    assert slow[0].fields["db.query.text"] == "SELECT name FROM items WHERE id = ?"
    selects = {e.fingerprint for e in memory.errors if e.title == "slow query: SELECT items"}
    assert len(selects) == 1
    obskit.shutdown()


def test_sqlalchemy_engine_on_a_sqlite_file(
    quiet_memory: InMemoryExporter, sink: RecordingSink, tmp_path: Path
) -> None:
    engine = obskit_sqlalchemy.instrument(create_engine(f"sqlite:///{tmp_path / 'shop.db'}"))
    assert obskit_sqlalchemy.instrument(engine) is engine  # idempotent
    with obskit.request("report"), engine.begin() as conn:
        conn.execute(text("CREATE TABLE items (id INTEGER, name TEXT)"))
        conn.execute(text("INSERT INTO items VALUES (:id, :name)"), [{"id": 1, "name": "a"}] * 2)
        assert conn.execute(text("SELECT name FROM items")).fetchall() == [("a",), ("a",)]
        with pytest.raises(Exception, match="no such table"):
            conn.execute(text("SELECT * FROM nowhere"))
    spans = client_spans(quiet_memory)
    assert [s.name for s in spans] == [
        "CREATE items",
        "INSERT items",
        "SELECT items",
        "SELECT nowhere",
    ]
    assert spans[1].attributes["db.operation.batch.size"] == 2
    assert spans[-1].status == "error"
    assert all(s.attributes["db.system"] == "sqlite" for s in spans)
    obskit_sqlalchemy.uninstrument(engine)
    with engine.begin() as conn:
        conn.execute(text("SELECT 1"))
    assert len(client_spans(quiet_memory)) == 4


SECRETS = st.one_of(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=6, max_size=20).map(
        lambda s: f"zq{s}"
    ),
    st.integers(min_value=10**9, max_value=10**15),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=SECRETS, inline=SECRETS)
def test_no_parameter_or_literal_value_reaches_any_exported_signal(value: Any, inline: Any) -> None:
    memory = InMemoryExporter()
    obskit.init(exporters=[memory], install_hooks=False, slow_ms=0, slow_capture=True)
    sink = RecordingSink()
    metrics.add_sink(sink)
    try:
        conn = dbapi.wrap(sqlite3.connect(":memory:"))
        engine = obskit_sqlalchemy.instrument(create_engine("sqlite://"))
        literal = f"'{inline}'" if isinstance(inline, str) else str(inline)
        with obskit.request("probe"):
            conn.execute("CREATE TABLE t (v)")
            conn.execute("INSERT INTO t VALUES (?)", (value,))
            conn.executemany("INSERT INTO t VALUES (?)", [(value,), (value,)])
            conn.execute(f"SELECT v FROM t WHERE v = {literal} OR v = ?", (value,))
            with engine.begin() as sa:
                sa.execute(text(f"SELECT :v, {literal}"), {"v": value})
            with pytest.raises(sqlite3.OperationalError):
                conn.execute(f"SELECT v FROM nowhere WHERE v = {literal}")
            obskit.capture_message("after the queries", level="error")
        signals = [*flushed(memory).logs, *memory.errors, *memory.spans]
        exported = "\n".join(json.dumps(s.to_dict(), default=str) for s in signals)
        exported += json.dumps(sink.points, default=str)
        assert "db.query.text" in exported
        assert str(value) not in exported
        assert str(inline) not in exported
    finally:
        metrics.remove_sink(sink)
        obskit.shutdown()
