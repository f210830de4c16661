"""Every ```python block in docs/ runs; every ```py block at least compiles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import obskit

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"^```(python|py)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def blocks() -> list[tuple[str, str, str]]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        for index, match in enumerate(BLOCK.finditer(page.read_text())):
            found.append((f"{page.name}#{index}", match.group(1), match.group(2)))
    return found


@pytest.mark.parametrize(("where", "fence", "code"), blocks(), ids=[b[0] for b in blocks()])
def test_docs_example(where: str, fence: str, code: str) -> None:
    compiled = compile(code, where, "exec")
    if fence == "python":
        exec(compiled, {"__name__": f"docs_{where}"})
        obskit.shutdown()
