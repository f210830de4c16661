"""The on-disk spool: signals an exporter could not deliver, kept until its backend takes them.

A :class:`~obskit.processor.BatchProcessor` given ``spool_dir`` writes a batch here when its
exporter answers ``RETRYABLE`` (the backend is down), then moves everything that queues up
behind it here too, and delivers the files oldest first once the backend answers again. A
process that is restarted, or killed, during the outage finds the files at start and delivers
them, so an outage plus a restart loses nothing that reached the disk.

Layout: one directory per exporter; one segment file per batch, JSON lines of
:func:`obskit._codec.encode`. A segment is written as ``*.tmp`` and renamed to ``*.seg`` when
complete, so a reader never sees half a segment. A process delivering a segment first renames
it to ``*.seg.<pid>-<token>.claimed`` (atomic, so two processes sharing the directory never
send the same segment); claims left by a dead process are released at start. A segment sent
back to the end of the spool (refused, or partly delivered) is moved by renames, so it is never
on disk twice. Delivery is at least once: a process killed between the backend's answer and the
file's deletion sends that segment again.

Files are flushed but not fsynced: they survive the process being killed, not the machine
losing power.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
import uuid
from pathlib import Path

from obskit import _codec, diagnostics
from obskit.signals import Signal

__all__ = ["Spool"]

_live_tokens: set[str] = set()
_CLAIM = re.compile(r"^(?P<segment>.+\.seg)\.(?P<pid>\d+)-(?P<token>[0-9a-f]+)\.claimed$")


class Spool:
    """A directory of spooled segments for one exporter, bounded by ``max_bytes``."""

    def __init__(self, directory: str | os.PathLike[str], *, max_bytes: int = 256 * 2**20) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._token = uuid.uuid4().hex[:12]
        _live_tokens.add(self._token)
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._next_orphan_scan = 0.0
        self._bytes = 0
        self.release_orphans()

    def close(self) -> None:
        """Give back any claim this spool still holds, for the next process."""
        _live_tokens.discard(self._token)
        for path in self.directory.glob(f"*.{os.getpid()}-{self._token}.claimed"):
            self._unclaim(path)

    # -- writing ---------------------------------------------------------------------------

    def write(self, batch: list[Signal]) -> bool:
        """Persist ``batch`` as one segment; ``False`` if the spool is full or unwritable."""
        if not batch:
            return True
        data = self._encode(batch)
        if self._bytes + len(data) > self.max_bytes:
            self._bytes = self._measure()
            if self._bytes + len(data) > self.max_bytes:
                diagnostics.report(
                    "spool.full",
                    f"spool {self.directory} is full ({self.max_bytes} bytes); "
                    "keeping signals in memory until the queue fills",
                )
                return False
        final = self._new_segment()
        temporary = final.with_suffix(".tmp")
        try:
            with open(temporary, "wb") as file:
                file.write(data)
            os.replace(temporary, final)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            diagnostics.report("spool.write", f"spool: cannot write {self.directory}: {exc}")
            return False
        self._bytes += len(data)
        return True

    def requeue(self, claimed: Path, rest: list[Signal] | None = None) -> bool:
        """Move a claimed segment to the back of the spool, keeping only ``rest`` if given.

        Each step is one rename, so a process killed at any point leaves the segment once
        (old content or ``rest``), never twice; ``False`` (the claim kept) if the disk refuses.
        """
        if rest == []:
            self.release(claimed)
            return True
        final = self._new_segment()
        try:
            if rest is not None:
                temporary = final.with_suffix(".tmp")
                data = self._encode(rest)
                old = claimed.stat().st_size
                with open(temporary, "wb") as file:
                    file.write(data)
                os.replace(temporary, claimed)  # the claim now holds only what is left
                self._bytes = max(0, self._bytes + len(data) - old)
            os.rename(claimed, final)
        except OSError as exc:
            diagnostics.report("spool.write", f"spool: cannot requeue in {self.directory}: {exc}")
            return False
        return True

    def _encode(self, batch: list[Signal]) -> bytes:
        lines = []
        for signal in batch:
            try:
                lines.append(_codec.dumps(_codec.encode(signal)))
            except Exception as exc:  # not a dataclass signal: it cannot be spooled
                diagnostics.report("spool.unencodable", f"spool: cannot encode {signal!r}: {exc}")
        return ("\n".join(lines) + "\n").encode("utf-8")

    def _new_segment(self) -> Path:
        """A path for a new segment, after every existing one written by this process."""
        with self._lock:
            name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._counter):06d}.seg"
        return self.directory / name

    # -- reading ---------------------------------------------------------------------------

    def pending(self) -> bool:
        """Whether an unclaimed segment is waiting (releasing orphaned claims now and then)."""
        if time.monotonic() >= self._next_orphan_scan:
            self.release_orphans()
        return self._oldest() is not None

    def claim(self) -> tuple[Path, list[Signal]] | None:
        """Take the oldest segment: ``(claim path, its signals)``, or ``None`` if there is none."""
        while True:
            segment = self._oldest()
            if segment is None:
                return None
            claimed = segment.with_name(f"{segment.name}.{os.getpid()}-{self._token}.claimed")
            try:
                os.rename(segment, claimed)
            except OSError:
                continue  # another process took it first
            try:
                os.utime(claimed)  # the claim's age, for hosts without a liveness probe
            except OSError:
                pass
            return claimed, self._read(claimed)

    def release(self, claimed: Path) -> None:
        """The claimed segment was delivered (or is beyond saving): delete it."""
        try:
            size = claimed.stat().st_size
            claimed.unlink()
            self._bytes = max(0, self._bytes - size)
        except OSError:
            pass

    def unclaim(self, claimed: Path) -> None:
        """Put a claimed segment back (not delivered yet)."""
        self._unclaim(claimed)

    def release_orphans(self) -> None:
        """Give back segments claimed by processes (or spools) that no longer exist."""
        self._next_orphan_scan = time.monotonic() + 30.0
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return
        for entry in entries:
            match = _CLAIM.match(entry.name)
            if match and not _claim_alive(int(match["pid"]), match["token"], entry.path):
                self._unclaim(Path(entry.path))
        self._bytes = self._measure()

    # -- plumbing --------------------------------------------------------------------------

    def newest_name(self) -> str:
        """The name (without suffixes) of the newest segment ("" if there is none)."""
        try:
            names = [e.name for e in os.scandir(self.directory) if e.name.endswith(".seg")]
        except OSError:
            return ""
        return max(names).partition(".seg")[0] if names else ""

    def _oldest(self) -> Path | None:
        try:
            names = [e.name for e in os.scandir(self.directory) if e.name.endswith(".seg")]
        except OSError:
            return None
        return self.directory / min(names) if names else None

    def _read(self, path: Path) -> list[Signal]:
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            diagnostics.report("spool.read", f"spool: cannot read {path.name}: {exc}")
            return []
        signals: list[Signal] = []
        for line in text.splitlines():
            try:
                signal = _codec.decode(_codec.loads(line)) if line else None
            except (ValueError, TypeError):
                signal = None
                diagnostics.report("spool.unreadable", f"spool: skipped a broken line in {path}")
            if signal is not None:
                signals.append(signal)
        return signals

    def _unclaim(self, claimed: Path) -> None:
        match = _CLAIM.match(claimed.name)
        if match:
            try:
                os.rename(claimed, claimed.with_name(match["segment"]))
            except OSError:
                pass

    def _measure(self) -> int:
        total = 0
        try:
            for entry in os.scandir(self.directory):
                if entry.name.endswith((".seg", ".claimed")):
                    total += entry.stat().st_size
        except OSError:
            pass
        return total


def _claim_alive(pid: int, token: str, path: str) -> bool:
    if pid == os.getpid():
        return token in _live_tokens
    if os.name != "posix":  # no safe liveness probe: trust claims for ten minutes
        try:
            return time.time() - os.stat(path).st_mtime < 600
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True
