"""``obskit demo`` fires and resolves an error-rate alert, sent to a local webhook."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from obskit.cli import main


def test_the_demo_fires_and_resolves_an_error_rate_alert(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["demo", "--seconds", "2", "--rps", "200", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    timeline = out[out.index("Alerts (rule high_error_rate") :]
    assert "firing" in timeline and "resolved" in timeline
    found = re.search(r"received (\d+) notification", timeline)
    assert found is not None and int(found.group(1)) >= 2
    assert "[FIRING:1] high_error_rate" in timeline and "[RESOLVED:1] high_error_rate" in timeline
    assert '"signal":"alert"' in (tmp_path / "demo.jsonl").read_text()
