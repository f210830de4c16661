"""Shared test set-up: a hypothesis profile without deadlines, and a clean obskit per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

import obskit
from obskit import diagnostics
from obskit.exporters import InMemoryExporter

pytest_plugins = ["obskit.testing"]  # the obskit_capture fixture, as users get it

# A slow shared machine must not turn a run red: no deadlines, fewer examples in CI.
settings.register_profile(
    "ci", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None)
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
