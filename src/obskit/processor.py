"""BatchProcessor: one per exporter, buffering signals and delivering them from a worker thread.

The house rules live here: application threads only append to a deque (no lock, no I/O); a full
queue drops and counts; a retryable failure is retried with exponential backoff and full jitter;
``shutdown`` and interpreter exit flush within a timeout; a forked child gets fresh workers.

Durability: a batch the exporter answers ``RETRYABLE`` is kept until the backend takes it
(unless ``retry_max_elapsed_s`` sets a limit), while the bounded queue keeps accepting behind it; an
exporter may ask for a longer pause through a ``retry_after_s`` attribute (a collector's
``Retry-After``). With ``spool_dir`` the processor moves the failed batch and everything queued
behind it to disk (:mod:`obskit.spool`) and delivers it from there, also after a restart.

Poison isolation: a batch the exporter refuses for good (``FAILURE``, or an exception) is split
in halves exported apart, so a record its exporter cannot take fails alone and is counted alone
(at most ``max_splits`` splits per batch, so a backend refusing everything is not asked once per
record).
"""

from __future__ import annotations

import collections
import os
import random
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from obskit import diagnostics
from obskit.exporting import Exporter, ExportResult
from obskit.signals import Signal

if TYPE_CHECKING:
    from obskit.spool import Spool

__all__ = ["BatchProcessor", "ProcessorStats", "on_export_thread"]


@dataclass(slots=True)
class ProcessorStats:
    """Self-metrics of one processor: every accepted signal ends exported, failed or dropped."""

    accepted: int = 0
    exported: int = 0
    dropped: int = 0
    failed: int = 0
    retried: int = 0
    queued: int = 0
    #: Signals this processor wrote to its spool directory (they are exported from there).
    spooled: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "exported": self.exported,
            "dropped": self.dropped,
            "failed": self.failed,
            "retried": self.retried,
            "queued": self.queued,
            "spooled": self.spooled,
        }


_live_processors: weakref.WeakSet[BatchProcessor] = weakref.WeakSet()
_export_thread = threading.local()


def on_export_thread() -> bool:
    """Whether the calling thread is an exporter's worker (what it logs would loop back)."""
    return getattr(_export_thread, "active", False)


class BatchProcessor:
    """Buffers signals for one exporter and delivers them in batches from a worker thread.

    ``retry_max_elapsed_s=None`` (the default) keeps a batch the backend refuses for now until it is
    taken; a number gives up after that many seconds (counted as failed). ``spool_dir`` adds
    the on-disk spool (see :mod:`obskit.spool`), in a subdirectory named after the processor.
    """

    #: The longest pause a ``Retry-After`` may impose between two attempts.
    max_retry_after_s = 300.0
    #: How many times a refused batch may be halved to isolate the records its exporter
    #: cannot take (one bad record in 512 needs 9).
    max_splits = 32
    #: Spooled segments tried per attempt when the exporter can deliver part of a batch.
    max_segments_per_pass = 16

    def __init__(
        self,
        exporter: Exporter,
        *,
        max_queue_size: int = 10_000,
        max_batch_size: int = 512,
        schedule_delay_s: float = 0.2,
        retry_max_elapsed_s: float | None = None,
        retry_initial_backoff_s: float = 0.1,
        retry_max_backoff_s: float = 5.0,
        name: str | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max_bytes: int = 256 * 2**20,
    ) -> None:
        check = diagnostics.require_number
        check("BatchProcessor", "max_queue_size", max_queue_size, integer=True)
        check("BatchProcessor", "max_batch_size", max_batch_size, integer=True)
        check("BatchProcessor", "spool_max_bytes", spool_max_bytes, integer=True)
        check("BatchProcessor", "schedule_delay_s", schedule_delay_s)
        check("BatchProcessor", "retry_initial_backoff_s", retry_initial_backoff_s)
        check("BatchProcessor", "retry_max_backoff_s", retry_max_backoff_s)
        check("BatchProcessor", "retry_max_elapsed_s", retry_max_elapsed_s, zero=True, none=True)
        self.exporter = exporter
        self.name = name or type(exporter).__name__
        self.max_queue_size = max_queue_size
        self.max_batch_size = max_batch_size
        self.schedule_delay_s = schedule_delay_s
        self.retry_max_elapsed_s = retry_max_elapsed_s
        self.retry_initial_backoff_s = retry_initial_backoff_s
        self.retry_max_backoff_s = retry_max_backoff_s
        self.spool_dir = spool_dir
        self.spool_max_bytes = spool_max_bytes
        self._init_runtime_state()
        _live_processors.add(self)

    def _init_runtime_state(self) -> None:
        self._queue: collections.deque[Signal] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._taken = 0  # signals the worker took off the queue (only the worker writes it)
        self._dropped = 0
        self._exported = 0
        self._failed = 0
        self._retried = 0
        self._abandoned = 0  # accepted, then left in the queue when shutdown timed out
        self._spooled = 0
        self._busy = False
        self._closed = False
        self._deadline: float | None = None
        self._spool = self._open_spool()
        self._spool_delay = self.retry_initial_backoff_s
        self._splits_left = self.max_splits
        self._worker = threading.Thread(target=self._run, name=f"obskit-{self.name}", daemon=True)
        self._worker.start()

    # -- application side: cheap, never blocks ---------------------------------------------

    def enqueue(self, signal: Signal) -> bool:
        """Queue a signal for export; ``False`` (and a counted drop) when full or shut down."""
        queue = self._queue
        if self._closed or len(queue) >= self.max_queue_size:
            if self._closed and self._spool_at_exit(signal):
                return True
            self._drop(1, "shut down" if self._closed else "queue full")
            return False
        queue.append(signal)
        # Event.set takes a lock; is_set does not: during an outage the queue stays long.
        if len(queue) >= self.max_batch_size and not self._wake.is_set():
            self._wake.set()
        return True

    def _spool_at_exit(self, signal: Signal) -> bool:
        """After shutdown (at exit: other atexit hooks, ``finally`` blocks) the worker is gone:
        with a spool the record goes to disk on the calling thread, for the next run."""
        if self._spool is None or not self._spool_batch([signal]):
            return False
        with self._lock:
            self._abandoned += 1
        return True

    def _drop(self, count: int, why: str) -> None:
        with self._lock:
            self._dropped += count
        diagnostics.report(
            f"dropped.{self.name}",
            f"{self.name}: dropped signals ({why}; queue size {self.max_queue_size})",
            count=count,
        )

    # -- worker side -----------------------------------------------------------------------

    def _run(self) -> None:
        _export_thread.active = True
        while True:
            self._wake.wait(self.schedule_delay_s)
            self._wake.clear()
            self._drain()
            if self._stop.is_set():
                self._drain()
                return

    def _drain(self) -> None:
        queue, spool = self._queue, self._spool
        while True:
            if self._past_deadline():
                return
            if spool is not None and spool.pending():
                # A backlog on disk goes first (it is older). During an outage this loops,
                # backing off, until the backend answers again or shutdown begins.
                self._busy = True
                delivered = self._deliver_spooled(spool)
                self._busy = False
                if not delivered and self._stop.is_set():
                    return
                continue
            if not queue:
                return
            self._busy = True
            batch: list[Signal] = []
            try:
                while queue and len(batch) < self.max_batch_size:
                    batch.append(queue.popleft())
            except IndexError:
                pass
            self._taken += len(batch)
            self._splits_left = self.max_splits
            self._export_with_retry(batch)
            self._busy = False

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _export_with_retry(self, batch: list[Signal]) -> None:
        delay = self.retry_initial_backoff_s
        give_up_at = (
            None
            if self.retry_max_elapsed_s is None
            else time.monotonic() + self.retry_max_elapsed_s
        )
        while True:
            result = self._call_export(batch)
            if result is ExportResult.SUCCESS:
                with self._lock:
                    self._exported += len(batch)
                return
            now = time.monotonic()
            if result is ExportResult.RETRYABLE:
                batch = self._undelivered(batch)
            if result is ExportResult.RETRYABLE and self._spool_batch(batch):
                return  # on disk now; _drain delivers it from there
            if result is ExportResult.FAILURE and self._isolate(batch):
                return
            if (
                result is ExportResult.FAILURE
                or (give_up_at is not None and now >= give_up_at)
                or self._past_deadline()
            ):
                self._count_failed(len(batch), result)
                return
            with self._lock:
                self._retried += 1
            pause = self._pause(delay)
            if self._deadline is not None:
                pause = min(pause, max(0.0, self._deadline - now))
            if self._stop.is_set():  # shutting down: keep retrying until the deadline
                time.sleep(pause)
            else:  # a shutdown during the pause cuts it short
                self._stop.wait(pause)
            delay = min(delay * 2, self.retry_max_backoff_s)

    def _undelivered(self, batch: list[Signal]) -> list[Signal]:
        """What of a ``RETRYABLE`` batch is left to send: an exporter with several endpoints
        (OTLP: logs, traces, metrics) says what it delivered through ``undelivered``."""
        rest = getattr(self.exporter, "undelivered", None)
        if not isinstance(rest, list) or len(rest) >= len(batch):
            return batch
        with self._lock:
            self._exported += len(batch) - len(rest)
        return rest

    def _isolate(self, batch: list[Signal]) -> bool:
        """Export the halves of a refused batch apart, so one bad record fails alone.

        ``False`` when the batch is a single record or this batch used up its splits (a
        backend that refuses everything is not asked ``2n`` times).
        """
        if len(batch) < 2 or self._splits_left <= 0:
            return False
        self._splits_left -= 1
        half = len(batch) // 2
        self._export_with_retry(batch[:half])
        self._export_with_retry(batch[half:])
        return True

    def _pause(self, delay: float) -> float:
        # Full jitter (AWS architecture blog): spreads retries of many processes apart.
        pause = random.uniform(0, delay)
        hint = getattr(self.exporter, "retry_after_s", None)
        if isinstance(hint, (int, float)) and hint > 0:  # the backend said when to come back
            pause = max(pause, min(float(hint), self.max_retry_after_s))
        return pause

    def _count_failed(self, count: int, result: ExportResult) -> None:
        with self._lock:
            self._failed += count
        diagnostics.report(
            f"failed.{self.name}",
            f"{self.name}: export failed, {count} signals lost ({result.value})",
            count=count,
        )

    # -- the spool -------------------------------------------------------------------------

    def _open_spool(self) -> Spool | None:
        if self.spool_dir is None:
            return None
        from obskit.spool import Spool

        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in self.name)
        try:
            return Spool(Path(self.spool_dir) / safe, max_bytes=self.spool_max_bytes)
        except OSError as exc:
            diagnostics.report(
                f"spool.{self.name}",
                f"{self.name}: spool disabled, cannot use {self.spool_dir}: {exc}",
            )
            return None

    def _spool_batch(self, batch: list[Signal]) -> bool:
        if self._spool is None or not self._spool.write(batch):
            return False
        with self._lock:
            self._spooled += len(batch)
        return True

    def _spill_queue(self) -> None:
        """During an outage, move what is queued to disk: memory is lost if the process dies."""
        queue = self._queue
        while queue:
            batch: list[Signal] = []
            try:
                while queue and len(batch) < self.max_batch_size:
                    batch.append(queue.popleft())
            except IndexError:
                pass
            self._taken += len(batch)
            if not self._spool_batch(batch):
                queue.extendleft(reversed(batch))  # spool full: back to the front of the queue
                self._taken -= len(batch)
                return

    def _deliver_spooled(self, spool: Spool) -> bool:
        """Try the oldest spooled segment; ``False`` if the backend is still refusing.

        With an exporter that reports what it ``undelivered`` (several endpoints: one may be
        down while the others are up), a segment refused whole goes to the back of the spool
        and the next ones are tried (up to ``max_segments_per_pass``), so logs do not wait
        behind spans a traces endpoint refuses.
        """
        self._spill_queue()
        rotate = hasattr(self.exporter, "undelivered")
        first: str | None = None
        for _ in range(self.max_segments_per_pass if rotate else 1):
            claim = spool.claim()
            if claim is None:
                return True
            path, batch = claim
            segment = path.name.partition(".seg")[0]
            if first is not None and segment >= first:
                spool.unclaim(path)  # written during this pass: every segment was tried
                break
            result = self._call_export(batch) if batch else ExportResult.SUCCESS
            if result is not ExportResult.RETRYABLE:
                spool.release(path)
                with self._lock:
                    if result is ExportResult.SUCCESS:
                        self._exported += len(batch)
                if result is ExportResult.FAILURE:
                    self._splits_left = self.max_splits
                    if not self._isolate(batch):
                        self._count_failed(len(batch), result)
                self._spool_delay = self.retry_initial_backoff_s
                return True
            rest = self._undelivered(batch)
            delivered = len(rest) < len(batch)
            if (delivered or rotate) and spool.requeue(path, rest if delivered else None):
                # the rest (or the whole refused segment) goes to the back, as a new segment
                first = first or spool.newest_name()
                if delivered:
                    self._spool_delay = self.retry_initial_backoff_s
                    return True
            else:
                spool.unclaim(path)
                break
            if self._stop.is_set():
                break
        with self._lock:
            self._retried += 1
        if self._stop.is_set():
            self._spill_queue()  # shutting down in an outage: the next run delivers the rest
            return False
        # Back off, moving newly queued signals to disk every schedule_delay_s meanwhile.
        until = time.monotonic() + self._pause(self._spool_delay)
        self._spool_delay = min(self._spool_delay * 2, self.retry_max_backoff_s)
        while (left := until - time.monotonic()) > 0 and not self._stop.is_set():
            self._stop.wait(min(left, self.schedule_delay_s))
            self._spill_queue()
        return False

    def _call_export(self, batch: list[Signal]) -> ExportResult:
        try:
            result = self.exporter.export(batch)
        except OSError as exc:  # network and file errors are usually transient
            diagnostics.report(
                f"export_error.{self.name}.{type(exc).__name__}",
                f"{self.name}.export raised {type(exc).__name__}: {exc}; retrying",
            )
            return ExportResult.RETRYABLE
        except Exception as exc:
            diagnostics.report(
                f"export_error.{self.name}.{type(exc).__name__}",
                f"{self.name}.export raised {type(exc).__name__}: {exc}",
            )
            return ExportResult.FAILURE
        if isinstance(result, ExportResult):
            return result
        return ExportResult.SUCCESS if result is None or result is True else ExportResult.FAILURE

    # -- lifecycle -------------------------------------------------------------------------

    def stats(self) -> ProcessorStats:
        queued = len(self._queue)
        with self._lock:
            return ProcessorStats(
                accepted=self._taken + queued + self._abandoned,
                exported=self._exported,
                dropped=self._dropped,
                failed=self._failed,
                retried=self._retried,
                queued=queued,
                spooled=self._spooled,
            )

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        """Deliver everything queued so far; ``True`` if it all left within the timeout."""
        deadline = time.monotonic() + diagnostics.bounded_timeout(timeout_s)
        while self._queue or self._busy or (self._spool is not None and self._spool.pending()):
            if not self._worker.is_alive() or time.monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(0.002)
        try:
            return bool(self.exporter.force_flush(max(0.0, deadline - time.monotonic())))
        except Exception as exc:
            diagnostics.report(
                f"flush_error.{self.name}", f"{self.name}.force_flush raised {exc!r}"
            )
            return False

    def begin_shutdown(self, deadline: float) -> None:
        """Stop accepting; let the worker drain until ``deadline`` (monotonic)."""
        self._closed = True
        self._deadline = deadline
        self._stop.set()
        self._wake.set()

    def finish_shutdown(self, deadline: float, *, keep_exporter: bool = False) -> None:
        """Wait for the worker up to ``deadline``; count what is left as dropped.

        ``keep_exporter`` flushes the exporter instead of shutting it down (a new pipeline
        goes on using the same exporter object).
        """
        self._worker.join(max(0.0, deadline - time.monotonic()))
        left = list(self._queue)
        if left or self._worker.is_alive():
            self._queue.clear()
            with self._lock:
                self._abandoned += len(left)
            if left and not self._spool_batch(left):
                self._drop(len(left), "shutdown timed out")
        if self._spool is not None and not self._worker.is_alive():
            self._spool.close()
        try:
            remaining = max(0.0, deadline - time.monotonic())
            if keep_exporter:
                self.exporter.force_flush(remaining)
            else:
                self.exporter.shutdown(remaining)
        except Exception as exc:
            diagnostics.report(
                f"shutdown_error.{self.name}", f"{self.name}.shutdown raised {exc!r}"
            )

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Flush what is queued and stop, within ``timeout_s``."""
        deadline = time.monotonic() + diagnostics.bounded_timeout(timeout_s)
        self.begin_shutdown(deadline)
        self.finish_shutdown(deadline)

    def _after_fork_in_child(self) -> None:
        # The parent still owns (and will export) what was queued before the fork.
        closed = self._closed
        self._init_runtime_state()
        if closed:
            self._closed = True
            self._stop.set()


def _reinit_after_fork() -> None:
    for processor in list(_live_processors):
        processor._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)
