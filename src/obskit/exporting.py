"""The seam between obskit and any backend: :class:`Exporter` and its :class:`ExportResult`.

An exporter is any object with ``export(batch)``, ``force_flush(timeout_s)`` and
``shutdown(timeout_s)``; its processor calls them only from its own worker thread.
"""

from __future__ import annotations

import enum
import os
import weakref
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from obskit.signals import Signal

__all__ = ["ExportResult", "Exporter", "ForkAware", "reset_in_forked_children"]


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


class ForkAware(Protocol):
    """An object holding locks, files or connections that a forked child must not share.

    It may also define ``_before_fork()`` and ``_after_fork_in_parent()`` (run in the
    forking process around the fork: to let a write finish and close what must not be
    inherited at all, as an SQLite connection).
    """

    def _after_fork_in_child(self) -> None: ...


_fork_aware: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def reset_in_forked_children(obj: ForkAware) -> None:
    """Call ``obj._after_fork_in_child()`` in every child this process forks.

    A lock some thread held at ``fork()`` stays held forever in the child (that thread does
    not exist there), and a connection or file position is the parent's: each exporter gives
    itself fresh ones. These run before the processors start their new workers.
    """
    _fork_aware.add(obj)


def _each(method: str) -> None:
    for obj in list(_fork_aware):
        hook = getattr(obj, method, None)
        if hook is not None:
            try:
                hook()
            except Exception:  # a broken hook must not break the fork
                pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=lambda: _each("_before_fork"),
        after_in_parent=lambda: _each("_after_fork_in_parent"),
        after_in_child=lambda: _each("_after_fork_in_child"),
    )
