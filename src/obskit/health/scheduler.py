"""One background thread per registry: an asyncio loop that runs interval checks when due.

The same loop serves the synchronous ``run()``: it hosts async checks and waits on sync ones,
each of which gets its own short-lived daemon thread for the call, so a hung check never
stalls the schedule. The thread is a daemon (it never keeps the interpreter alive), starts on
first use, stops on ``close()`` or ``obskit.shutdown()`` and starts again when next needed,
including in a forked child.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from obskit import diagnostics
from obskit.health.state import CheckSpec

__all__ = ["LoopThread", "due_checks", "next_wakeup"]

T = TypeVar("T")
#: The longest the scheduler sleeps without looking again (a clock jump is noticed by then).
MAX_SLEEP_S = 30.0


def due_checks(specs: Sequence[CheckSpec], now: float) -> list[CheckSpec]:
    """The enabled interval checks whose next run is due at clock time ``now``.

    A check whose last start lies in the future (the wall clock stepped back) is due at once,
    rather than after the step.
    """
    due = []
    for spec in specs:
        if not spec.enabled or spec.interval_s is None:
            continue
        last = spec.state.last_started
        if last is None or now >= last + spec.interval_s or now < last:
            due.append(spec)
    return due


def next_wakeup(specs: Sequence[CheckSpec], now: float) -> float:
    """Seconds until the next interval check is due (``MAX_SLEEP_S`` when none is scheduled)."""
    delay = MAX_SLEEP_S
    for spec in specs:
        if spec.enabled and spec.interval_s is not None:
            last = spec.state.last_started
            if last is None or now < last:
                return 0.0
            delay = min(delay, last + spec.interval_s - now)
    return max(0.0, delay)


class LoopThread:
    """A daemon thread running an asyncio loop, with a scheduler task for interval checks."""

    def __init__(
        self,
        name: str,
        checks: Callable[[], Sequence[CheckSpec]],
        clock: Callable[[], float],
        run_scheduled: Callable[[CheckSpec], Coroutine[Any, Any, None]],
    ) -> None:
        self._name = name
        self._checks = checks
        self._clock = clock
        self._run_scheduled = run_scheduled
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._wake: asyncio.Event | None = None

    def after_fork_in_child(self) -> None:
        """The parent's thread does not exist in a child: forget it, start afresh when needed."""
        self._reset()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def ensure_started(self) -> asyncio.AbstractEventLoop:
        """Start the thread (and its scheduler) unless it runs; return its loop."""
        with self._lock:
            if self._loop is not None and self.running():
                return self._loop
            loop = asyncio.new_event_loop()
            started = threading.Event()
            thread = threading.Thread(
                target=self._serve, args=(loop, started), name=self._name, daemon=True
            )
            self._loop, self._thread = loop, thread
            thread.start()
        started.wait(5.0)
        return loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the loop thread; its future can be waited on from any thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.ensure_started())

    def wake(self) -> None:
        """Make the scheduler look at the checks again (one was added or enabled)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # closed meanwhile
                pass

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop the scheduler and the loop; wait up to ``timeout_s`` for the thread to end."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = self._wake = None
        if loop is None or thread is None:
            return
        try:
            loop.call_soon_threadsafe(loop.stop)
        except RuntimeError:
            pass
        if thread is not threading.current_thread():
            thread.join(timeout_s)

    def _serve(self, loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        scheduler = loop.create_task(self._schedule(loop, started))
        try:
            loop.run_forever()
        finally:
            scheduler.cancel()
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            try:
                if pending:  # a check ignoring its cancellation gets a second, not forever
                    loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
                loop.close()
            except Exception:  # a task refusing to stop: leave the loop to the collector
                pass

    async def _schedule(self, loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        wake = self._wake = asyncio.Event()
        started.set()
        running: set[asyncio.Task[None]] = set()
        while True:
            try:
                checks = self._checks()
                now = self._clock()
                for spec in due_checks(checks, now):
                    spec.state.last_started = now  # the run also sets it; this avoids a relaunch
                    task = loop.create_task(self._run_scheduled(spec))
                    running.add(task)
                    task.add_done_callback(running.discard)
                delay = next_wakeup(checks, self._clock())
            except Exception as exc:
                diagnostics.report("health.scheduler", f"health scheduler failed: {exc!r}")
                delay = 1.0
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), timeout=min(delay, MAX_SLEEP_S))
            except asyncio.TimeoutError:
                pass
