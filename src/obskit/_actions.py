"""Actions: a user's function run when something happens, off the caller's thread.

An alert rule's ``on_fire`` / ``on_resolve`` and a health check's ``on_status_change`` are
actions: remediation steps (restart a worker, flush a cache, open a circuit). Each run happens
on a daemon thread of its own, so the evaluating thread and the notifications never wait for
it longer than its ``timeout_s``; a run still going at its deadline is recorded as
``timed_out`` (Python cannot stop a thread: the function keeps running, and its late end is
ignored), whether the injected clock or real time reaches the deadline first.
``min_interval_s`` is the action's rate limit: a run asked for sooner than that after the
previous one is not started and is recorded as ``rate_limited``. At most ``max_running`` runs
of one runner are in flight; past that, runs are refused the same way.

Every outcome is an :class:`ActionRun` (``ok``, ``error`` with the exception's message,
``timed_out``, ``rate_limited``), told to the runner's ``on_outcome`` callback once. Time (the
rate limit, start and deadline) is the injected ``clock``, so tests drive it; ``expire(now)``
times out the runs past their deadline at that clock reading.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from obskit import diagnostics
from obskit.diagnostics import ConfigError, require_number

__all__ = ["Action", "ActionRun", "ActionRunner", "as_action"]

#: What an action's run can end as.
OUTCOMES = ("ok", "error", "timed_out", "rate_limited")


class Action:
    """A function to run on an event, with a timeout and a rate limit.

    A bare function given as ``on_fire=`` (or ``on_status_change=``) becomes
    ``Action(fn)``; make one to choose the limits. Mistakes raise ``ConfigError`` here.

    >>> def restart_worker(alert): ...
    >>> Action(restart_worker, timeout_s=5, min_interval_s=300).name
    'restart_worker'
    >>> Action(restart_worker, timeout_s=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    obskit.diagnostics.ConfigError: action restart_worker: timeout_s must be ... > 0, not 0
    """

    __slots__ = ("fn", "is_async", "min_interval_s", "name", "timeout_s")

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        timeout_s: float = 10.0,
        min_interval_s: float = 60.0,
        name: str | None = None,
    ) -> None:
        if isinstance(fn, Action) or not callable(fn):
            raise ConfigError(
                f"an action is a function (or any callable), got {fn!r}; pass e.g. "
                "on_fire=restart_worker, or Action(restart_worker, timeout_s=5)"
            )
        self.fn = fn
        self.name = name or getattr(fn, "__qualname__", None) or repr(fn)
        # timeout_s: how long a run may take before it is recorded as timed out;
        # min_interval_s: the least time between two starts (0: no limit).
        require_number(f"action {self.name}", "timeout_s", timeout_s)
        require_number(f"action {self.name}", "min_interval_s", min_interval_s, zero=True)
        self.timeout_s = float(timeout_s)
        self.min_interval_s = float(min_interval_s)
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - an object whose __call__ is async
        )

    def __repr__(self) -> str:
        return (
            f"Action({self.name}, timeout_s={self.timeout_s:g}, "
            f"min_interval_s={self.min_interval_s:g})"
        )


def as_action(value: Any, what: str) -> Action | None:
    """``value`` (``None``, a callable or an :class:`Action`) as an Action; ``what`` names the
    setting in the ``ConfigError`` raised for anything else."""
    if value is None or isinstance(value, Action):
        return value
    if not callable(value):
        raise ConfigError(
            f"{what} must be a function (or Action(fn, timeout_s=..., min_interval_s=...)), "
            f"not {type(value).__name__} {value!r}"
        )
    return Action(value)


@dataclass(slots=True, eq=False)
class ActionRun:
    """One run of an action and how it ended.

    ``hook`` says which event ran it (``on_fire``, ``on_resolve``, ``on_status_change``),
    ``name`` the function, ``subject`` what it ran for (an alert fingerprint, a check name).
    ``status`` is ``running`` until it becomes one of ``ok``, ``error`` (``error`` holds the
    exception as ``Type: message``), ``timed_out`` or ``rate_limited``. Times are the clock's.

    >>> run = ActionRun("on_fire", "restart_worker", "d96408fae31fcbd9", 100.0, 105.0)
    >>> run.finish("error", "RuntimeError: no worker", at=101.5)
    True
    >>> run.describe()
    'on_fire restart_worker: error after 1.5 s: RuntimeError: no worker'
    """

    hook: str
    name: str
    subject: str
    started_at: float
    deadline: float
    status: str = "running"
    error: str = ""
    finished_at: float | None = None
    #: Real-time deadline (``time.monotonic``): when a waiting notification stops waiting.
    monotonic_deadline: float = 0.0
    _callbacks: list[Callable[[ActionRun], None]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def done(self) -> bool:
        return self.status != "running"

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)

    def finish(self, status: str, error: str = "", *, at: float) -> bool:
        """End the run (only the first call counts); ``True`` if this call ended it."""
        with self._lock:
            if self.status != "running":
                return False
            self.status, self.error, self.finished_at = status, error, at
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception as exc:
                diagnostics.report("actions.callback", f"action outcome callback: {exc!r}")
        return True

    def when_done(self, callback: Callable[[ActionRun], None]) -> None:
        """Call ``callback(run)`` when the run ends (now, if it has)."""
        with self._lock:
            if self.status == "running":
                self._callbacks.append(callback)
                return
        callback(self)

    def time_out(self, at: float | None = None) -> bool:
        """Record the run as timed out (if it is still running)."""
        timeout = self.deadline - self.started_at
        return self.finish(
            "timed_out",
            f"still running after {timeout:g} s",
            at=self.deadline if at is None else at,
        )

    def describe(self) -> str:
        """One line for people: ``on_fire restart_worker: ok in 0.2 s``."""
        head = f"{self.hook} {self.name}"
        took = self.duration_s
        if self.status == "ok":
            return f"{head}: ok" + (f" in {took:.2g} s" if took is not None else "")
        if self.status == "error":
            after = f" after {took:.2g} s" if took is not None else ""
            return f"{head}: error{after}: {self.error}"
        if self.status == "timed_out":
            return f"{head}: timed out ({self.error})"
        if self.status == "rate_limited":
            return f"{head}: not run ({self.error})"
        return f"{head}: still running"

    def to_dict(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "name": self.name,
            "subject": self.subject,
            "status": self.status,
            "error": self.error,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": self.duration_s,
        }

    def copy(self, error: str | None = None) -> ActionRun:
        """A detached copy (its outcome frozen as it is now), ``error`` replaced if given."""
        return ActionRun(
            self.hook,
            self.name,
            self.subject,
            self.started_at,
            self.deadline,
            self.status,
            self.error if error is None else error,
            self.finished_at,
            self.monotonic_deadline,
        )


class ActionRunner:
    """Runs actions on their own daemon threads; applies rate limits; reports every outcome."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        on_outcome: Callable[[ActionRun], None] | None = None,
        max_running: int = 8,
        name: str = "actions",
    ) -> None:
        if max_running < 1:
            raise ConfigError(f"max_running must be at least 1, got {max_running!r}")
        self.clock = clock
        self.on_outcome = on_outcome
        self.max_running = max_running
        self.name = name
        self._last_start: dict[Action, float] = {}
        self._running: set[ActionRun] = set()
        self._lock = threading.Lock()

    def run(self, action: Action, hook: str, subject: str, *args: Any) -> ActionRun:
        """Start ``action.fn(*args)`` now (or refuse it: rate limited); the run, at once."""
        now = self.clock()
        run = ActionRun(
            hook,
            action.name,
            subject,
            now,
            now + action.timeout_s,
            monotonic_deadline=time.monotonic() + action.timeout_s,
        )
        run.when_done(self._ended)
        with self._lock:
            last = self._last_start.get(action)
            refusal = ""
            if last is not None and 0 <= now - last < action.min_interval_s:
                refusal = (
                    f"rate limited: last run {now - last:g} s ago, "
                    f"min_interval_s={action.min_interval_s:g}"
                )
            elif len(self._running) >= self.max_running:
                refusal = f"{len(self._running)} actions still running"
            else:
                self._last_start[action] = now
                self._running.add(run)
        if refusal:
            run.finish("rate_limited", refusal, at=now)
            return run
        thread = threading.Thread(
            target=self._execute,
            args=(run, action, args),
            name=f"obskit-{self.name}-{action.name}"[:60],
            daemon=True,
        )
        # The deadline in real time, whatever the clock says; expire(now) applies the clock's.
        watchdog = threading.Timer(action.timeout_s, run.time_out)
        watchdog.daemon = True
        try:
            thread.start()
            watchdog.start()
        except RuntimeError as exc:  # no more threads (interpreter exiting)
            run.finish("error", f"could not start: {exc}", at=now)
        run.when_done(lambda _: watchdog.cancel())
        return run

    def expire(self, now: float | None = None) -> list[ActionRun]:
        """Time out every run past its deadline at ``now`` (the clock by default)."""
        now = self.clock() if now is None else now
        with self._lock:
            late = [run for run in self._running if now >= run.deadline]
        return [run for run in late if run.time_out()]

    def running(self) -> list[ActionRun]:
        with self._lock:
            return sorted(self._running, key=lambda run: run.started_at)

    def after_fork_in_child(self) -> None:
        """The parent's runs do not run here: forget them."""
        self._lock = threading.Lock()
        self._running = set()

    def _execute(self, run: ActionRun, action: Action, args: tuple[Any, ...]) -> None:
        try:
            if action.is_async:
                asyncio.run(action.fn(*args))
            else:
                action.fn(*args)
        except BaseException as exc:  # SystemExit in a user's function must not end us
            run.finish("error", _describe(exc), at=self.clock())
        else:
            run.finish("ok", at=self.clock())

    def _ended(self, run: ActionRun) -> None:
        with self._lock:
            self._running.discard(run)
        if self.on_outcome is not None:
            try:
                self.on_outcome(run)
            except Exception as exc:
                diagnostics.report(f"{self.name}.outcome", f"recording an action outcome: {exc!r}")


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
