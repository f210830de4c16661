"""The pipeline: every signal goes through here, to one BatchProcessor per exporter.

Layering follows the OpenTelemetry SDK (provider -> processor -> exporter): capabilities create
signals, :class:`Pipeline` scrubs each once and fans it out, each
:class:`~obskit.processor.BatchProcessor` buffers it in a bounded queue and delivers batches on
its own worker thread to its :class:`~obskit.exporting.Exporter`.
"""

from __future__ import annotations

import atexit
import collections
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import Any

from obskit import diagnostics
from obskit.exporting import Exporter
from obskit.processor import BatchProcessor
from obskit.scrubbing import Scrubber
from obskit.signals import Signal

__all__ = ["Pipeline"]


class Pipeline:
    """Stamps each signal with the service identity, scrubs it once and hands it to every
    exporter's processor.

    ``resource`` (an OpenTelemetry ``Resource``) is the setup's identity: its
    ``service.name``, ``deployment.environment.name`` and ``service.version`` fill the
    ``service``, ``environment`` and ``release`` fields a signal left empty, and exporters
    with a ``set_resource(resource)`` method receive it before their first batch.

    ``processor_options`` (``max_batch_size=...``) go to every exporter's
    :class:`~obskit.processor.BatchProcessor`; ``per_exporter``, one mapping per exporter,
    overrides them for that exporter alone.
    """

    def __init__(
        self,
        exporters: Sequence[Exporter],
        *,
        scrubber: Scrubber | None = None,
        resource: Any = None,
        per_exporter: Sequence[Mapping[str, Any]] = (),
        **processor_options: Any,
    ) -> None:
        self.scrubber = scrubber or Scrubber()
        self.resource = resource
        attributes = dict(resource.attributes) if resource is not None else {}
        self._identity = {
            "service": str(attributes.get("service.name") or ""),
            "environment": str(attributes.get("deployment.environment.name") or ""),
            "release": str(attributes.get("service.version") or "") or None,
        }
        for exporter in exporters:
            set_resource = getattr(exporter, "set_resource", None)
            if resource is not None and callable(set_resource):
                try:
                    set_resource(resource)
                except Exception as exc:
                    diagnostics.report(
                        "set_resource", f"{type(exporter).__name__}.set_resource raised {exc!r}"
                    )
        names = _unique_names([type(e).__name__ for e in exporters])
        own = list(per_exporter) or [{}] * len(exporters)
        self.processors = [
            BatchProcessor(e, name=name, **{**processor_options, **options})
            for e, name, options in zip(exporters, names, own, strict=True)
        ]
        self._closed = False
        _live_pipelines.add(self)
        _arrange_multiprocessing_child()

    @property
    def exporters(self) -> list[Exporter]:
        return [p.exporter for p in self.processors]

    def emit(self, signal: Signal) -> None:
        """Stamp and scrub ``signal`` and queue it for every exporter. Never raises."""
        try:
            cls = type(signal)
            identity = _identity_cache.get(cls)
            for name in identity if identity is not None else _identity_fields(cls):
                if not getattr(signal, name):
                    setattr(signal, name, self._identity[name])
            signal.scrub(self.scrubber)
        except Exception as exc:
            diagnostics.report("scrub_error", f"could not scrub a {signal.kind} signal: {exc!r}")
            return
        for processor in self.processors:
            processor.enqueue(signal)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Deliver everything queued so far, within ``timeout_s`` in total."""
        deadline = time.monotonic() + diagnostics.bounded_timeout(timeout_s)
        ok = True
        for processor in self.processors:
            ok = processor.force_flush(max(0.0, deadline - time.monotonic())) and ok
        return ok

    def shutdown(self, timeout_s: float = 5.0, *, keep: Sequence[Exporter] = ()) -> None:
        """Flush and stop every processor, in parallel, within ``timeout_s`` in total.

        Exporters in ``keep`` are flushed but not shut down: ``init`` passes the ones the new
        setup reuses.
        """
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + diagnostics.bounded_timeout(timeout_s)
        kept = {id(exporter) for exporter in keep}
        for processor in self.processors:
            processor.begin_shutdown(deadline)
        for processor in self.processors:
            processor.finish_shutdown(deadline, keep_exporter=id(processor.exporter) in kept)

    def stats(self) -> dict[str, dict[str, int]]:
        return {p.name: p.stats().to_dict() for p in self.processors}


_IDENTITY_FIELDS = ("service", "environment", "release")
_identity_cache: dict[type, tuple[str, ...]] = {}


def _identity_fields(cls: type) -> tuple[str, ...]:
    """Which of service/environment/release a signal class carries (cached per class)."""
    fields = _identity_cache.get(cls)
    if fields is None:
        declared = getattr(cls, "__dataclass_fields__", {})
        fields = _identity_cache[cls] = tuple(f for f in _IDENTITY_FIELDS if f in declared)
    return fields


def _unique_names(names: list[str]) -> list[str]:
    seen: collections.Counter[str] = collections.Counter()
    unique = []
    for name in names:
        seen[name] += 1
        unique.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return unique


_live_pipelines: weakref.WeakSet[Pipeline] = weakref.WeakSet()
#: How long interpreter exit may spend flushing (settable through ``init(shutdown_timeout_s=)``).
exit_timeout_s = 5.0


_exiting = False


@atexit.register
def _flush_at_exit() -> None:
    global _exiting
    _exiting = True  # a SIGTERM now lets this flush finish (see _on_signal)
    for pipeline in list(_live_pipelines):
        pipeline.shutdown(exit_timeout_s)


# -- multiprocessing children end with os._exit(): no atexit there --------------------------


class _ForkedChildren:
    """The object multiprocessing's after-fork registry holds (it keeps only weak refs)."""


_multiprocessing_hook = _ForkedChildren()
_multiprocessing_hooked = False


def _hook_multiprocessing() -> None:
    """Before a fork: if multiprocessing is in use, have its children flush on their exit.

    A ``multiprocessing`` child (``Process``, ``Pool`` workers) ends with ``os._exit``, so
    ``atexit`` never runs there; its own exit hook runs finalizers registered with an exit
    priority, which is where the child's pipelines are flushed.
    """
    global _multiprocessing_hooked
    if _multiprocessing_hooked or "multiprocessing" not in sys.modules:
        return
    from multiprocessing import util

    util.register_after_fork(_multiprocessing_hook, _in_multiprocessing_child)
    _multiprocessing_hooked = True


def _in_multiprocessing_child(_: object) -> None:
    global _finalizer_registered
    from multiprocessing import util

    if not _finalizer_registered:
        util.Finalize(None, _flush_at_exit, exitpriority=100)
        _finalizer_registered = True
    if not _terminate_watched:
        _watch_terminate_from_a_thread()


_finalizer_registered = False


def _arrange_multiprocessing_child() -> None:
    """The same in a child that multiprocessing spawned (spawn, forkserver): obskit is set up
    there by the child itself, after the start, so no fork hook ran."""
    if _finalizer_registered and _terminate_watched:
        return
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is None:
        return
    if multiprocessing.parent_process() is not None:  # set up inside the child's run()
        _in_multiprocessing_child(None)
    else:  # the parent, or a child importing its main module before it starts: runs at start
        _hook_multiprocessing()


def _watch_terminate_from_a_thread() -> None:
    """In a multiprocessing child, also act on SIGTERM from a thread.

    ``Pool.terminate`` sends SIGTERM to workers that may be blocked in a semaphore wait that a
    Python-level handler never interrupts; the main thread would then never run it, and the
    pool would hang joining the worker. Python's wakeup file descriptor tells a thread of the
    signal even then: it flushes and ends the process, as SIGTERM's default action would.
    """
    if signal.getsignal(signal.SIGTERM) is not _on_signal:
        return
    if _previous_handlers.get(signal.SIGTERM, signal.SIG_DFL) != signal.SIG_DFL:
        return  # the application's own handler runs on the main thread only
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except (ValueError, OSError):
        previous = -2
    if previous != -1:  # someone (an event loop) already listens: leave it to them
        if previous >= 0:
            signal.set_wakeup_fd(previous)
        os.close(read_fd)
        os.close(write_fd)
        return
    global _terminate_watched
    watcher = threading.Thread(
        target=_end_on_terminate, args=(read_fd,), name="obskit-signal-watch", daemon=True
    )
    watcher.start()
    _terminate_watched = True


def _end_on_terminate(read_fd: int) -> None:
    while True:
        try:
            received = os.read(read_fd, 64)
        except OSError:
            return
        if not received:
            return
        if signal.SIGTERM in received and not _exiting:  # (an exit flush ends it itself)
            _flush_all()
            os._exit(128 + signal.SIGTERM)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_hook_multiprocessing)


# -- SIGTERM and SIGINT: flush, then do what the process would have done ---------------------

#: The handlers obskit replaced, by signal number (chained after the flush).
_previous_handlers: dict[int, Any] = {}
_flushing = False
_terminate_watched = False  # set in multiprocessing children (see _watch_terminate_from_a_thread)


def install_signal_flush(signums: Sequence[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
    """Flush every pipeline on SIGTERM and SIGINT, then run the handler that was there.

    A container stops with SIGTERM, whose default action ends the process without running
    ``atexit``: what was queued would be lost. The application's own handler (or Python's
    ``KeyboardInterrupt``) still runs after the flush; a signal the application ignores stays
    ignored; without a handler, the process then ends by the signal as it would have.
    Only the main thread can set handlers: from another thread this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in signums:
        current = signal.getsignal(signum)
        if current is _on_signal or current is None or current == signal.SIG_IGN:
            continue  # ours already; set outside Python (cannot chain it); ignored on purpose
        try:
            signal.signal(signum, _on_signal)
        except (ValueError, OSError):  # not the main interpreter, or not allowed here
            continue
        _previous_handlers[signum] = current
    _arrange_multiprocessing_child()  # (its SIGTERM watcher needs the handler in place)


def uninstall_signal_flush() -> None:
    """Put back the handlers :func:`install_signal_flush` replaced (where still ours)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, previous in list(_previous_handlers.items()):
        try:
            if signal.getsignal(signum) is _on_signal:
                signal.signal(signum, previous)
        except (ValueError, OSError):
            continue
        del _previous_handlers[signum]


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _flushing
    if _exiting:
        return  # the exit flush under way ends the process within its timeout
    if signum == signal.SIGTERM and _terminate_watched:
        return  # a multiprocessing child: its watcher thread flushes and ends the process
    if not _flushing:  # a second signal during the flush goes straight to the next handler
        _flushing = True
        try:
            # On another thread: the handler interrupts the main thread anywhere, possibly
            # holding a lock the flush needs; waiting on a thread cannot deadlock with it.
            flusher = threading.Thread(target=_flush_all, name="obskit-signal-flush", daemon=True)
            flusher.start()
            flusher.join(exit_timeout_s + 0.5)
        except Exception as exc:
            diagnostics.report("signal_flush", f"flush on signal {signum} failed: {exc!r}")
        finally:
            _flushing = False
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        # No handler: end the process by the signal, as it would have (exit status 128+N).
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _flush_all() -> None:
    deadline = time.monotonic() + exit_timeout_s
    for pipeline in list(_live_pipelines):
        pipeline.flush(max(0.0, deadline - time.monotonic()))
