"""The README's two commands are the ones CI runs and the demo runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from obskit.cli import main

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert block, "README needs a ```sh block with the two commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_has_exactly_two_commands_demo_and_tests() -> None:
    demo, tests = readme_commands()
    assert demo.endswith("obskit demo")
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command() -> None:
    _, tests = readme_commands()
    assert tests in (ROOT / ".ci" / "run").read_text()


def test_demo_runs_and_reports(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["demo", "--seconds", "0.5", "--rps", "200", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Log records by level" in out and "Pipeline" in out and "Anomalies" in out
    assert (tmp_path / "demo.jsonl").stat().st_size > 0


def test_readme_tour_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import obskit

    text = (ROOT / "README.md").read_text()
    tour = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert tour, "README needs a ```python tour"
    monkeypatch.chdir(tmp_path)
    exec(compile(tour.group(1), "README.md", "exec"), {"__name__": "readme"})
    lines = (tmp_path / "shop.jsonl").read_text().splitlines()
    assert any('"event":"checkout started"' in line for line in lines)
    assert not any("hunter2" in line for line in lines)
    obskit.shutdown()
