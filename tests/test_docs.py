"""Every docs page's ```python blocks run, in order, in one namespace (like a doctest session);
```py blocks are illustrations needing a server or framework, and only have to compile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import obskit

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"^```(python|py)\n(.*?)^```", re.DOTALL | re.MULTILINE)
PAGES = sorted(DOCS.glob("*.md"))


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_docs_page_examples_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for index, match in enumerate(BLOCK.finditer(page.read_text())):
        fence, code = match.groups()
        compiled = compile(code, f"{page.name} block {index}", "exec")
        if fence == "python":
            exec(compiled, namespace)
    obskit.shutdown()
