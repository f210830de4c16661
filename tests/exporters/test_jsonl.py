"""JsonLinesExporter: appends, rotates by size, survives exit without shutdown."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from obskit.exporters import JsonLinesExporter
from obskit.signals import LogRecord


def rec(n: int) -> LogRecord:
    return LogRecord(
        timestamp=time.time(), level="info", event="e", fields={"n": n, "pad": "x" * 50}
    )


def test_appends_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    for batch in ([rec(1)], [rec(2), rec(3)]):
        exporter = JsonLinesExporter(path)
        exporter.export(batch)
        exporter.shutdown()
    assert [json.loads(line)["n"] for line in path.read_text().splitlines()] == [1, 2, 3]


def test_rotates_by_size_keeping_backups(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    exporter = JsonLinesExporter(path, max_bytes=1000, backup_count=2)
    for n in range(60):
        exporter.export([rec(n)])
    exporter.shutdown()
    files = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert files == ["r.jsonl", "r.jsonl.1", "r.jsonl.2"]
    for name in files:
        assert (tmp_path / name).stat().st_size <= 1000
    newest = [json.loads(line)["n"] for line in path.read_text().splitlines()]
    assert newest[-1] == 59
    older = [json.loads(line)["n"] for line in (tmp_path / "r.jsonl.1").read_text().splitlines()]
    assert older[-1] + 1 == newest[0]


def test_kinds_filter(tmp_path: Path) -> None:
    path = tmp_path / "k.jsonl"
    exporter = JsonLinesExporter(path, kinds={"error"})
    exporter.export([rec(1)])
    exporter.shutdown()
    assert not path.exists() or path.read_text() == ""


def test_process_exiting_without_shutdown_leaves_every_line(tmp_path: Path) -> None:
    path = tmp_path / "exit.jsonl"
    script = textwrap.dedent(
        f"""
        import obskit
        from obskit.exporters import JsonLinesExporter
        obskit.init(exporters=[JsonLinesExporter({str(path)!r})])
        log = obskit.get_logger("exit")
        for n in range(10_000):
            log.info("line", n=n)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    numbers = [line["n"] for line in lines if line["signal"] == "log"]  # + the exit metrics
    assert numbers == list(range(10_000))
