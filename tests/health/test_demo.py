"""``obskit demo`` ends with the health report of its simulated shop, one dependency flaky."""

from __future__ import annotations

from pathlib import Path

import pytest

from obskit.cli import main


def test_the_demo_shows_its_health_report_with_a_flaky_dependency(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["demo", "--seconds", "0.3", "--rps", "100", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    health = out[out.index("\nHealth (") :]
    answered = health.split("payments-api answered", 1)[1].splitlines()[0].split()
    reported = health.split("payments-api reported", 1)[1].splitlines()[0].split()
    assert "fail" in answered and "pass" in answered  # flaky
    assert reported.count("fail") < answered.count("fail")  # the threshold damps it
    report = health[health.index("health: ") :].splitlines()
    assert report[0].split()[1] in ("PASS", "WARN")  # a non-critical dependency never fails it
    assert [line.split()[1].split(":")[0] for line in report[1:]] == [
        "database",
        "disk",
        "memory",
        "payments-api",
    ]
