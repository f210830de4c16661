"""Shared test set-up: a hypothesis profile without deadlines, a clean obskit per test, and a
metrics sink that records every point."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import obskit
from obskit import diagnostics, metrics
from obskit.exporters import InMemoryExporter

pytest_plugins = ["obskit.testing"]  # the obskit_capture fixture, as users get it

# CI ("ci", the default): no deadlines (a slow shared machine must not turn a run red), fewer
# examples, and derandomized, so a run's verdict depends on the code, not on the draw. Looking
# for new counterexamples is "explore": HYPOTHESIS_PROFILE=explore python -m pytest -k <area>.
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=60,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _clean_obskit() -> Iterator[None]:
    diagnostics.reset()
    yield
    obskit.shutdown(timeout_s=2)
    obskit.health.clear()  # the default registry outlives shutdown, as an app's checks do
    obskit.metrics.STORE.reset()  # series, and the names the shortcuts declared
    diagnostics.reset()


@pytest.fixture
def memory() -> InMemoryExporter:
    """obskit initialised with only an in-memory exporter, returned for inspection."""
    exporter = InMemoryExporter()
    obskit.init(service="test", environment="test", level="debug", exporters=[exporter])
    return exporter


class RecordingSink:
    """A metrics sink keeping every point it is handed: ``(call, name, value, labels)``."""

    def __init__(self) -> None:
        self.points: list[tuple[str, str, float, dict[str, Any]]] = []

    def observe(
        self, name: str, value: float, labels: dict[str, Any], timestamp: float | None
    ) -> None:
        self.points.append(("observe", name, value, dict(labels)))

    def increment(
        self, name: str, amount: float, labels: dict[str, Any], timestamp: float | None
    ) -> None:
        self.points.append(("increment", name, amount, dict(labels)))

    @property
    def observed(self) -> list[tuple[str, float, dict[str, Any]]]:
        """The observations only, as ``(name, value, labels)``."""
        return [(name, value, labels) for call, name, value, labels in self.points
                if call == "observe"]  # fmt: skip


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    """A :class:`RecordingSink` hearing every metric point during the test."""
    recording = RecordingSink()
    metrics.add_sink(recording)
    yield recording
    metrics.remove_sink(recording)


@contextlib.contextmanager
def plugin_exporter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, module: str, source: str
) -> Iterator[Any]:
    """An installed third-party exporter package: ``module`` (``source``, defining a class
    named after the module in CamelCase) registered as ``name`` under the ``obskit.exporters``
    entry point of a real ``.dist-info``; yields the imported module, uninstalls at the end."""
    from obskit.exporting import _plugin_exporters

    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    dist = tmp_path / f"{module}-1.0.dist-info"
    dist.mkdir()
    package = module.replace("_", "-")
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    cls = "".join(part.title() for part in module.split("_"))
    (dist / "entry_points.txt").write_text(f"[obskit.exporters]\n{name} = {module}:{cls}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _plugin_exporters.cache_clear()
    try:
        yield importlib.import_module(module)
    finally:
        sys.modules.pop(module, None)
        _plugin_exporters.cache_clear()
