"""JsonLinesExporter: one JSON object per line, appended to a file, rotated by size."""

from __future__ import annotations

import os
import threading
from collections.abc import Collection, Mapping, Sequence
from typing import IO, Any, ClassVar

from obskit.diagnostics import bounded_timeout, require_kinds, require_number, require_path
from obskit.exporters._render import json_line
from obskit.exporting import LOCAL_FILE_BATCHING, ExportResult, reset_in_forked_children
from obskit.signals import Signal

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: rotation is safe within one process only
    fcntl = None  # type: ignore[assignment]

__all__ = ["JsonLinesExporter"]


class JsonLinesExporter:
    """Appends each signal as a JSON line to ``path``.

    When the file would grow past ``max_bytes`` it is rotated like ``RotatingFileHandler``:
    ``path`` -> ``path.1`` -> ... -> ``path.<backup_count>`` (the oldest is deleted).
    ``max_bytes=0`` never rotates. ``kinds`` limits which signal kinds are written.

    Several processes may append to one file (workers of one server, forked children): each
    batch is one unbuffered append, and size checks and rotation happen under an advisory
    lock on ``.<name>.lock`` beside it (POSIX), so the file is rotated once and no process
    goes on writing into a rotated file.
    """

    #: A local file: bigger, rarer batches than a remote backend's (see LOCAL_FILE_BATCHING).
    processor_defaults: ClassVar[Mapping[str, Any]] = LOCAL_FILE_BATCHING

    def __init__(
        self,
        path: str | os.PathLike[str] = "obskit.jsonl",
        *,
        max_bytes: int = 100 * 1024 * 1024,
        backup_count: int = 5,
        kinds: Collection[str] | None = None,
    ) -> None:
        owner = "JsonLinesExporter"
        require_number(owner, "max_bytes", max_bytes, integer=True, zero=True)
        require_number(owner, "backup_count", backup_count, integer=True, zero=True)
        self.path = require_path(owner, "path", path)
        self.max_bytes = max_bytes
        self.backup_count = backup_count
        self.kinds = require_kinds(owner, kinds)
        self._file: IO[bytes] | None = None
        self._lock_fd: int | None = None
        # Normally one worker thread calls export; during a re-init two may, briefly.
        self._lock = threading.Lock()
        reset_in_forked_children(self)

    def export(self, batch: Sequence[Signal]) -> ExportResult:
        kinds = self.kinds
        data = "".join(
            json_line(s) + "\n" for s in batch if kinds is None or s.kind in kinds
        ).encode("utf-8")
        if not data:
            return ExportResult.SUCCESS
        with self._lock:
            self._lock_other_processes()
            try:
                file = self._current_file()
                if self.max_bytes:
                    size = os.fstat(file.fileno()).st_size
                    if size and size + len(data) > self.max_bytes:
                        self._rotate()
                        file = self._current_file()
                _write_all(file, data)
            finally:
                self._unlock_other_processes()
        return ExportResult.SUCCESS

    # -- the file, shared with other processes -----------------------------------------------

    def _current_file(self) -> IO[bytes]:
        """The open file at ``path``; reopened when another process rotated it away."""
        file = self._file
        if file is not None and not file.closed:
            try:
                named, opened = os.stat(self.path), os.fstat(file.fileno())
                if (named.st_ino, named.st_dev) == (opened.st_ino, opened.st_dev):
                    return file
            except FileNotFoundError:
                pass
            file.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered, appending: each batch is one write at the end, whoever else appends,
        # and a forked child inherits no half-written buffer.
        self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - kept open
        return self._file

    def _lock_other_processes(self) -> None:
        """Hold an advisory lock on ``.<name>.lock`` so processes rotate one at a time."""
        if fcntl is None:
            return
        if self._lock_fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock_path = self.path.with_name(f".{self.path.name}.lock")
            self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    def _unlock_other_processes(self) -> None:
        if fcntl is not None and self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

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
        return True  # every batch is written (unbuffered) before export returns

    def shutdown(self, timeout_s: float = 5.0) -> None:
        if not self._lock.acquire(timeout=bounded_timeout(timeout_s)):
            return
        try:
            if self._file is not None:
                self._file.close()
                self._file = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
        finally:
            self._lock.release()

    def _after_fork_in_child(self) -> None:
        # The parent's worker may hold the lock; its descriptors stay the parent's to close.
        self._lock = threading.Lock()
        _inherited.append((self._file, self._lock_fd))
        self._file = None
        self._lock_fd = None  # a new lock description, or flock would not exclude the parent


#: What a forked child inherited: kept referenced (never closed or flushed by the child).
_inherited: list[object] = []


def _write_all(file: IO[bytes], data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = file.write(view)
        view = view[written or 0 :] if written is not None else view
