"""The structure holds: layers, a light facade, and a repository that tracks only sources."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import obskit

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold() -> None:
    """Layers, no cycles (function-level imports included), config and exporters kept apart."""
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(lint).exists():
        pytest.skip("import-linter is not installed (the dev extra has it)")
    done = subprocess.run(
        [lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_import_obskit_loads_nothing_heavy() -> None:
    """``import obskit`` does no work: pydantic, structlog, OpenTelemetry load on first use."""
    code = (
        "import sys, obskit\n"
        "heavy = ('pydantic', 'structlog', 'opentelemetry', 'wrapt', 'obskit.config',"
        " 'obskit.logging', 'obskit.errors', 'obskit.metrics', 'obskit._runtime')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
    assert done.stderr == ""


def test_facade_lists_its_lazy_names_and_exports_no_internals() -> None:
    listed = dir(obskit)
    for name in obskit.__all__:
        assert name in listed, name
        assert getattr(obskit, name) is not None
    assert "errors" in obskit.__all__
    assert {"set_clock", "sinks", "check_value", "refuse"}.isdisjoint(obskit.__all__)
    assert {"set_clock", "sinks", "check_value", "refuse"}.isdisjoint(obskit.errors.__all__)
    assert {"set_clock", "sinks", "check_value", "refuse"}.isdisjoint(obskit.metrics.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        obskit.nope  # noqa: B018


def test_first_use_of_a_lazy_name_works_in_a_fresh_interpreter() -> None:
    code = (
        "import obskit\n"
        "from obskit import instrument, errors, Settings\n"
        "@instrument\n"
        "def f():\n    return 3\n"
        "assert f() == 3 and errors.groups() == [] and Settings().service\n"
        "obskit.init(exporters=['memory'])\n"
        "obskit.get_logger('x').info('hello')\n"
        "obskit.shutdown()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # init prints nothing unless debug=True


def _tracked_files() -> list[str]:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    done = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    )
    return [name for name in done.stdout.decode().split("\0") if name]


#: Binary files the repository may hold: figures of the documentation, assets a UI ships.
_ALLOWED_BINARY = (".png", ".svg", ".ico", ".woff2")
_ARCHIVES = (".whl", ".tar.gz", ".tgz", ".zip", ".egg", ".tar", ".gz", ".bz2", ".xz", ".7z")


def test_the_repository_tracks_no_binary_or_archive() -> None:
    """Wheels, archives, databases and other binaries stay out of git (figures in docs/ aside)."""
    offending = []
    for name in _tracked_files():
        path = ROOT / name
        if name.endswith(_ARCHIVES):
            offending.append(name)
        elif path.is_file() and not name.endswith(_ALLOWED_BINARY):
            with path.open("rb") as handle:
                if b"\0" in handle.read(8192):  # git's own test for a binary file
                    offending.append(name)
    assert offending == []


def test_the_sdist_holds_only_sources_docs_tests_and_examples(tmp_path: Path) -> None:
    builders = pytest.importorskip("hatchling.builders.sdist", reason="hatchling builds it")
    builder = builders.SdistBuilder(str(ROOT))
    (archive,) = builder.build(directory=str(tmp_path), versions=["standard"])
    with tarfile.open(archive) as sdist:
        names = [name.split("/", 1)[1] for name in sdist.getnames() if "/" in name]
    tops = {name.split("/", 1)[0] for name in names}
    assert tops <= {
        "src", "tests", "docs", "examples", "benchmarks",
        "README.md", "pyproject.toml", "mkdocs.yml", "PKG-INFO", ".gitignore",
    }  # fmt: skip
    assert "src/obskit/__init__.py" in names and "tests/test_architecture.py" in names
    assert not [n for n in names if n.endswith((*_ARCHIVES, ".db", ".jsonl", ".pyc"))]


def test_the_import_benchmark_runs_and_prints_its_table() -> None:
    bench = ROOT / "benchmarks" / "bench_import.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    for row in ("| import obskit ", "| import structlog ", "| import obskit; obskit.init() "):
        assert row in done.stdout
