"""docs/health.md stays true: its JSON parses, its plain script prints what it says.

(tests/test_docs.py runs every ```python block of the docs and compiles every ```py block.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "health.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.DOTALL)


def test_every_json_example_parses() -> None:
    for block in blocks("json"):
        assert json.loads(block)["status"] in ("pass", "warn", "fail")


def test_the_plain_script_runs_and_reports_warn(capsys: pytest.CaptureFixture[str]) -> None:
    script = blocks("python")[0]
    assert "obskit.health.run()" in script
    exec(compile(script, "docs/health.md plain script", "exec"), {"__name__": "docs"})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "warn"
    assert out[1].startswith("health: WARN (HTTP 200)  queue: backlog growing")
