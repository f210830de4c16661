"""A step run every ``interval_s`` on a daemon thread: the reader's collections and the
multi-process snapshots."""

from __future__ import annotations

import threading

__all__ = ["Periodic"]


class Periodic:
    """Runs :meth:`tick` every ``interval_s`` on a daemon thread named ``thread_name``.

    ``start`` is idempotent, ``stop`` joins (never the calling thread itself), and after a fork
    the child restarts the thread if the parent's was running.
    """

    thread_name = "obskit-periodic"

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def after_fork_in_child(self) -> None:
        running = self._thread is not None and not self._stop.is_set()
        self._thread = None
        if running:
            self.start()

    def _run(self) -> None:
        stop = self._stop
        while not stop.wait(self.interval_s):
            self.tick()
