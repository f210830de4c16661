"""JsonLinesExporter: one JSON object per line, appended to a file, rotated by size."""

from __future__ import annotations

import os
import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import IO

from obskit.exporters._render import json_line
from obskit.exporting import ExportResult
from obskit.signals import Signal

__all__ = ["JsonLinesExporter"]


class JsonLinesExporter:
    """Appends each signal as a JSON line to ``path``.

    When the file would grow past ``max_bytes`` it is rotated like ``RotatingFileHandler``:
    ``path`` -> ``path.1`` -> ... -> ``path.<backup_count>`` (the oldest is deleted).
    ``max_bytes=0`` never rotates. ``kinds`` limits which signal kinds are written.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "obskit.jsonl",
        *,
        max_bytes: int = 100 * 1024 * 1024,
        backup_count: int = 5,
        kinds: Collection[str] | None = None,
    ) -> None:
        if max_bytes < 0 or backup_count < 0:
            raise ValueError("max_bytes and backup_count must be >= 0")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backup_count = backup_count
        self.kinds = frozenset(kinds) if kinds is not None else None
        self._file: IO[bytes] | None = None
        # Normally one worker thread calls export; during a re-init two may, briefly.
        self._lock = threading.Lock()

    def export(self, batch: Sequence[Signal]) -> ExportResult:
        kinds = self.kinds
        data = "".join(
            json_line(s) + "\n" for s in batch if kinds is None or s.kind in kinds
        ).encode("utf-8")
        if not data:
            return ExportResult.SUCCESS
        with self._lock:
            file = self._open()
            if self.max_bytes and file.tell() and file.tell() + len(data) > self.max_bytes:
                self._rotate()
                file = self._open()
            file.write(data)
            file.flush()
        return ExportResult.SUCCESS

    def _open(self) -> IO[bytes]:
        if self._file is None or self._file.closed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115 - kept open across batches
        return self._file

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.backup_count == 0:
            self.path.unlink(missing_ok=True)
            return
        for index in range(self.backup_count - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        if self._file is not None and not self._file.closed:
            self._file.flush()
        return True

    def shutdown(self, timeout_s: float = 5.0) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
