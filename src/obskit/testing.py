"""Helpers for testing code that uses obskit: capture every signal it emits.

In a test::

    from obskit.testing import capture

    def test_checkout_logs():
        with capture() as captured:
            checkout()
        assert captured.logs[0].event == "checkout started"

With pytest, add ``pytest_plugins = ["obskit.testing"]`` to ``conftest.py`` and use the
``obskit_capture`` fixture. Reading ``.records`` (or ``.logs``, ``.errors``, ``.spans``) flushes
the pipeline first, so what was emitted is there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import obskit
from obskit.exporters import InMemoryExporter
from obskit.exporters.memory import SignalViews

__all__ = ["CapturedSignals", "capture", "obskit_capture"]


class CapturedSignals(SignalViews):
    """What obskit emitted inside a :func:`capture` block, flushed on every read.

    >>> with capture(service="doc") as captured:
    ...     obskit.get_logger("t").info("hello", n=1)
    ...     [(r.event, r.fields) for r in captured.logs]
    [('hello', {'n': 1})]
    """

    def __init__(self, exporter: InMemoryExporter) -> None:
        self.exporter = exporter

    @property
    def records(self) -> list[Any]:
        obskit.flush()
        return self.exporter.records

    def clear(self) -> None:
        obskit.flush()
        self.exporter.clear()


@contextmanager
def capture(**settings: Any) -> Iterator[CapturedSignals]:
    """Initialise obskit with an in-memory exporter (plus ``settings``); shut it down after."""
    settings.setdefault("level", "debug")
    exporter = InMemoryExporter()
    obskit.init(exporters=[exporter], **settings)
    try:
        yield CapturedSignals(exporter)
    finally:
        obskit.shutdown()


try:
    import pytest
except ImportError:  # pytest is optional: the fixture exists only where pytest does
    pass
else:

    @pytest.fixture
    def obskit_capture() -> Iterator[CapturedSignals]:
        """A pytest fixture: obskit captures into memory for the duration of the test."""
        with capture() as captured:
            yield captured
