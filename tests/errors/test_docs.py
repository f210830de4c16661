"""docs/errors.md: its examples run, in order, and print what their comments say."""

from __future__ import annotations

import contextlib
import io
import re
import runpy
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def script_and_expected_output() -> tuple[str, list[str]]:
    """All python blocks as one script, and the output each ``print`` line's comment shows."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    lines = "\n".join(blocks).splitlines()
    expected = []
    for index, line in enumerate(lines):
        code, _, comment = line.partition("  # ")
        if not code.lstrip().startswith("print("):
            continue
        parts = [comment] if comment else []
        for following in lines[index + 1 :]:
            if not following.lstrip().startswith("#"):
                break
            parts.append(following.lstrip()[1:])
        expected.append(" ".join(" ".join(parts).split()))
    return "\n".join(blocks), expected


def test_the_examples_run_and_print_what_their_comments_say(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script, expected = script_and_expected_output()
    path = tmp_path / "errors_doc.py"
    path.write_text(script)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        runpy.run_path(str(path), run_name="__main__")
    printed = output.getvalue().splitlines()
    assert len(printed) == len(expected) > 10
    for line, comment in zip(printed, expected, strict=True):
        assert comment.startswith(" ".join(line.split())), (line, comment)
