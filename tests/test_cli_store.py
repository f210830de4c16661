"""``obskit report``, ``obskit logs`` and ``obskit errors`` read the SQLite store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from obskit.cli import main
from obskit.exporters import SQLiteExporter
from obskit.signals import Alert, ErrorEvent, HealthRecord, LogRecord


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    return status, capsys.readouterr().out


def test_report_on_the_demo_database_prints_error_groups_health_and_alerts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["demo", "--seconds", "2", "--rps", "200", "--out", str(tmp_path)]) == 0
    closing = capsys.readouterr().out
    assert f"obskit report --db {tmp_path / 'demo.db'}" in closing
    assert f"obskit dashboard --db {tmp_path / 'demo.db'}" in closing
    status, out = run(capsys, "report", "--db", str(tmp_path / "demo.db"))
    assert status == 0
    assert "demo-shop" in out and "POST /checkout" in out  # service, and requests from spans
    groups = out.split("Error groups")[1].split("Health:")[0]
    assert "KeyError: 'search index shard 3 is missing'" in groups
    health = out.split("Health:")[1].split("Alerts")[0]
    assert "latest:" in health and "payments-api" in health
    alerts = out.split("Alerts")[1].split("Requests")[0]
    assert "FIRING" in alerts and "RESOLVED" in alerts and "high_error_rate" in alerts


@pytest.fixture
def db(tmp_path: Path) -> Path:
    now = time.time()
    path = tmp_path / "shop.db"
    exporter = SQLiteExporter(path)
    exporter.export(
        [
            LogRecord(timestamp=now - 5, level="info", event="checkout started", logger="shop"),
            LogRecord(
                timestamp=now - 4,
                level="warning",
                event="card declined",
                logger="shop.pay",
                fields={"amount": 42},
            ),
            ErrorEvent(
                event_id="e1",
                timestamp=now - 3,
                level="error",
                fingerprint="f" * 32,
                title="KeyError: 'shard 3'",
                culprit="search.lookup",
            ),
            ErrorEvent(
                event_id="e2",
                timestamp=now - 2,
                level="error",
                fingerprint="f" * 32,
                title="KeyError: 'shard 3'",
                culprit="search.lookup",
            ),
            HealthRecord(
                timestamp=now - 2,
                status="fail",
                changed=["db"],
                checks={"db": {"status": "fail", "message": "connection refused"}},
            ),
            Alert(
                timestamp=now - 1,
                rule="high_error_rate",
                state="firing",
                severity="critical",
                value=0.25,
                labels={"route": "/search"},
            ),
        ]
    )
    exporter.shutdown()
    return path


def test_report_prints_error_groups_health_and_alerts(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    status, out = run(capsys, "report", "--db", str(db))
    assert status == 0
    groups = out.split("Error groups")[1].split("Health")[0]
    assert "KeyError: 'shard 3'" in groups and " 2 " in groups and "ffffffffffff" in groups
    health = out.split("Health:")[1].split("Alerts")[0]
    assert "latest: fail" in health and "connection refused" in health
    alerts = out.split("Alerts")[1]
    assert "FIRING" in alerts and "high_error_rate" in alerts and "value=0.25" in alerts
    assert "card declined" in out.split("Recent warnings and errors")[1]


def test_logs_filters_and_prints_oldest_first(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, out = run(capsys, "logs", "--db", str(db))
    assert status == 0
    lines = out.splitlines()
    assert "checkout started" in lines[0] and "card declined" in lines[1]
    _, out = run(capsys, "logs", "--db", str(db), "--level", "warning", "--since", "1h")
    assert "card declined" in out and "amount=42" in out and "checkout" not in out
    _, out = run(capsys, "logs", "--db", str(db), "--grep", "CHECKOUT", "--json")
    assert out.count("\n") == 1 and '"event":"checkout started"' in out


def test_errors_prints_the_groups_table(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, out = run(capsys, "errors", "--db", str(db))
    assert status == 0
    assert "KeyError: 'shard 3'" in out and "(search.lookup)" in out


def test_a_missing_database_is_a_clear_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["report", "--db", str(tmp_path / "nope.db")]) == 1
    assert "no obskit database" in capsys.readouterr().err
    assert main(["logs", "--db", str(tmp_path / "nope.db"), "--since", "soon"]) == 2
