"""The seam between obskit and any backend: :class:`Exporter` and its :class:`ExportResult`.

An exporter is any object with ``export(batch)``, ``force_flush(timeout_s)`` and
``shutdown(timeout_s)``; its processor calls them only from its own worker thread.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from obskit.signals import Signal

__all__ = ["ExportResult", "Exporter"]


class ExportResult(enum.Enum):
    """What an exporter reports for one batch."""

    SUCCESS = "success"
    #: Transient (backend down, 429, 503): the batch is retried with backoff.
    RETRYABLE = "retryable"
    #: The backend refused the batch for good (400, bad schema): counted as failed.
    FAILURE = "failure"


@runtime_checkable
class Exporter(Protocol):
    """Delivers batches of signals somewhere. Called only from its processor's worker thread."""

    def export(self, batch: Sequence[Signal]) -> ExportResult: ...

    def force_flush(self, timeout_s: float = 5.0) -> bool: ...

    def shutdown(self, timeout_s: float = 5.0) -> None: ...
