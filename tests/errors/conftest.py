"""Fixtures for the errors tests: a driven clock and generated, importable application code."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

import obskit


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(memory: object) -> FakeClock:
    """obskit (with the in-memory exporter) reading time from a fake clock."""
    fake = FakeClock()
    obskit.errors._set_clock(fake)
    return fake


class CodeBase:
    """Application modules written to a directory, imported, run and rewritten.

    Each ``write`` bumps the file's modification time, so a reload always sees the new text
    (no stale bytecode, no stale ``linecache``), as after a real deploy.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._stamp = 1_600_000_000
        self.imported: list[str] = []

    def write(self, module: str, source: str) -> Path:
        path = self.root.joinpath(*module.split(".")).with_suffix(".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.parents:
            if parent == self.root:
                break
            init = parent / "__init__.py"
            if not init.exists():
                init.write_text("")
        path.write_text(textwrap.dedent(source))
        self._stamp += 10
        os.utime(path, (self._stamp, self._stamp))
        return path

    def load(self, module: str) -> ModuleType:
        """Import ``module`` from this directory, reloading it if it was imported from here."""
        importlib.invalidate_caches()
        if str(self.root) in sys.path:
            sys.path.remove(str(self.root))
        sys.path.insert(0, str(self.root))
        existing = sys.modules.get(module)
        if existing is not None and str(getattr(existing, "__file__", "")).startswith(
            str(self.root)
        ):
            return importlib.reload(existing)
        _purge(module.split(".")[0])
        self.imported.append(module)
        return importlib.import_module(module)

    def forget(self) -> None:
        if str(self.root) in sys.path:
            sys.path.remove(str(self.root))
        for module in self.imported:
            _purge(module.split(".")[0])


def _purge(package: str) -> None:
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]


@pytest.fixture
def codebase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], CodeBase]]:
    """A factory of code directories (``codebase("v1")``), all removed from imports after."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    made: list[CodeBase] = []

    def make(name: str) -> CodeBase:
        base = CodeBase(tmp_path / name)
        made.append(base)
        return base

    yield make
    for base in made:
        base.forget()
