"""InMemoryExporter: keeps every signal in a list, for tests (yours and ours)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from obskit.exporting import ExportResult
from obskit.signals import Signal

__all__ = ["InMemoryExporter", "SignalViews"]


class SignalViews:
    """Read-only views by signal kind over ``records`` (shared by the exporter and testing)."""

    @property
    def records(self) -> list[Signal]:
        raise NotImplementedError

    def of_kind(self, kind: str) -> list[Any]:
        """Records of one signal kind: "log", "error", "span", "metric", "health", ..."""
        return [r for r in self.records if r.kind == kind]

    @property
    def logs(self) -> list[Any]:
        return self.of_kind("log")

    @property
    def errors(self) -> list[Any]:
        return self.of_kind("error")

    @property
    def spans(self) -> list[Any]:
        return self.of_kind("span")


class InMemoryExporter(SignalViews):
    """Collects exported signals in ``.records`` (call ``obskit.flush()`` before reading).

    >>> import obskit
    >>> memory = InMemoryExporter()
    >>> obskit.init(service="docs", exporters=[memory])
    >>> obskit.get_logger("shop").info("paid", order=7)
    >>> _ = obskit.flush()
    >>> [(r.event, r.fields["order"]) for r in memory.logs]
    [('paid', 7)]
    >>> obskit.shutdown()
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[Signal] = []
        self.shut_down = False

    @property
    def records(self) -> list[Signal]:
        """A copy of everything exported so far, in order."""
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def export(self, batch: Sequence[Signal]) -> ExportResult:
        with self._lock:
            self._records.extend(batch)
        return ExportResult.SUCCESS

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        return True

    def shutdown(self, timeout_s: float = 5.0) -> None:
        self.shut_down = True
