"""The same crashes fingerprint alike on every Python version (PEP 709 inlined comprehensions).

Runs one script, which writes a module with list, dict and set comprehensions that crash, under
this interpreter and under each interpreter listed in ``OBSKIT_OTHER_PYTHONS`` (comma-separated
paths to interpreters with obskit installed, e.g. a 3.12 and a 3.13 venv), and compares the
fingerprints. Skipped when the variable is unset: CI runs one Python. Checked by hand with
3.11.7, 3.12.1 and 3.13.0; tests/errors/test_grouping_runtimes.py rebuilds a 3.12 stack on any
version.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

OTHERS = [p.strip() for p in os.environ.get("OBSKIT_OTHER_PYTHONS", "").split(",") if p.strip()]

SCRIPT = r"""
import importlib, json, pathlib, sys, tempfile

import obskit
from obskit.exporters import InMemoryExporter

SOURCE = '''
def totals(carts):
    return [
        sum(item["price"] for item in cart) / len(cart)
        for cart in carts
    ]


def by_name(rows):
    return {row["name"]: (lambda r: 1 / r["count"])(row) for row in rows}


def unique(rows):
    return {1 // row for row in rows}


def handle(kind):
    if kind == "list":
        return totals([[]])
    if kind == "dict":
        return by_name([{"name": "a", "count": 0}])
    return unique([0])
'''
root = pathlib.Path(tempfile.mkdtemp())
(root / "stats.py").write_text(SOURCE)
sys.path.insert(0, str(root))
stats = importlib.import_module("stats")
obskit.init(exporters=[InMemoryExporter()], install_hooks=False)
out = {}
for kind in ("list", "dict", "set"):
    try:
        stats.handle(kind)
    except Exception as exc:
        event = obskit.capture_exception(exc)
        out[kind] = [event.fingerprint, [f["function"] for f in event.exceptions[0]["frames"]]]
print(json.dumps(out))
"""


def fingerprints(python: str, script: Path) -> dict[str, list[object]]:
    done = subprocess.run(
        [python, str(script)], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.skipif(not OTHERS, reason="set OBSKIT_OTHER_PYTHONS to compare Python versions")
@pytest.mark.parametrize("other", OTHERS)
def test_comprehension_crashes_fingerprint_alike_across_python_versions(
    tmp_path: Path, other: str
) -> None:
    script = tmp_path / "fingerprints.py"
    script.write_text(SCRIPT)
    here, there = fingerprints(sys.executable, script), fingerprints(other, script)
    assert {kind: fp for kind, (fp, _) in here.items()} == {
        kind: fp for kind, (fp, _) in there.items()
    }
