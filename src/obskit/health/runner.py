"""Running checks: all at once, each bounded by its timeout, never raising, never blocking.

A sync check runs in a short-lived daemon thread, an async one as a task on the running loop;
either is abandoned at its timeout and reported as fail "timed out after X s", so one hung
check never holds up the report or the interpreter's exit. Threads cannot be killed, so a hung
sync check is not started again while its last call is still running: later runs report it as
failing at once instead of piling up threads. Runs of one check that overlap (the scheduler and
an endpoint poll, say) share one call rather than calling the dependency twice.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import inspect
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from obskit.health.model import CheckResult, Status
from obskit.health.state import CheckSpec
from obskit.scrubbing import safe_repr

__all__ = ["Execution", "Runner", "time_left"]

#: How long past a run's deadline others wait for its result before giving up on it.
GRACE_S = 1.0

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "obskit_health_deadline", default=None
)

Outcome = tuple[bool, Any]  # (True, returned value) or (False, raised exception)
Recorder = Callable[[CheckSpec, CheckResult], tuple[CheckResult, bool]]


def time_left() -> float | None:
    """Seconds the running check has left before its timeout (``None`` outside a check).

    Built-in checks use it as their socket timeout; a check of your own can too.
    """
    deadline = _deadline.get()
    return None if deadline is None else max(0.0, deadline - time.monotonic())


@dataclass(eq=False)
class Execution:
    """One call of a check: when it started, when it times out, and its eventual result."""

    started: float  # time.monotonic()
    deadline: float  # time.monotonic()
    result: concurrent.futures.Future[CheckResult]
    thread: threading.Thread | None = None
    returned: bool = False  # the check function returned (or raised), in whatever thread

    def still_running(self) -> bool:
        """The check's thread is still inside the check function (hung, or just slow)."""
        return self.thread is not None and not self.returned and self.thread.is_alive()


class Runner:
    """Runs checks on the running event loop; ``record`` applies thresholds and emits events."""

    def __init__(self, clock: Callable[[], float], lock: threading.Lock, record: Recorder) -> None:
        self._clock = clock
        self._lock = lock
        self._record = record

    async def run_all(self, specs: Iterable[CheckSpec], into: dict[str, CheckResult]) -> list[str]:
        """Run ``specs`` concurrently, storing each result in ``into`` as soon as it is known.

        Returns the names of the checks whose reported status changed.
        """
        outcomes = await asyncio.gather(*(self._run_into(spec, into) for spec in specs))
        return [name for name, changed in outcomes if changed]

    async def _run_into(self, spec: CheckSpec, into: dict[str, CheckResult]) -> tuple[str, bool]:
        result, changed = await self.run_one(spec)
        into[spec.name] = result
        return spec.name, changed

    async def run_one(self, spec: CheckSpec) -> tuple[CheckResult, bool]:
        """Run one check (or join its call in flight); the result and whether its status changed."""
        now = time.monotonic()
        role, execution = self._claim(spec, now)
        if role == "join":
            shared = await _wait_threadsafe(execution.result, execution.deadline + GRACE_S - now)
            return (shared if shared is not None else self._timed_out(spec, now)), False
        if role == "stuck":
            message = (
                f"timed out after {spec.timeout_s:g} s: its call from"
                f" {now - execution.started:.1f} s ago is still running,"
                " so it was not started again"
            )
            return self._record(spec, self._finish(spec, CheckResult.fail(message), 0.0))
        try:
            result, changed = self._record(spec, await self._call(spec, execution))
        except BaseException:  # cancelled (the caller went away): release anyone waiting
            if not execution.result.done():
                execution.result.set_result(self._timed_out(spec, now))
            raise
        execution.result.set_result(result)
        return result, changed

    def _claim(self, spec: CheckSpec, now: float) -> tuple[str, Execution]:
        """Decide, atomically, how this run gets its result.

        "join": a call in flight will answer for us; "stuck": the last call hung in its thread
        and must not be started again; "own": we start a new call (the returned execution).
        """
        with self._lock:
            state = spec.state
            last = state.execution
            if last is not None and not last.result.done() and now < last.deadline + GRACE_S:
                return "join", last
            state.last_started = self._clock()
            if last is not None and last.still_running():
                return "stuck", last
            state.execution = Execution(now, now + spec.timeout_s, concurrent.futures.Future())
            return "own", state.execution

    async def _call(self, spec: CheckSpec, execution: Execution) -> CheckResult:
        start = time.perf_counter()
        outcome: Outcome | None
        try:
            if spec.is_async:
                outcome = await _call_async(spec.fn, execution)
            else:
                outcome = await _call_in_thread(spec, execution)
        except Exception as exc:  # the machinery itself failed (no thread left, say)
            outcome = (False, exc)
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        if outcome is None:
            return self._finish(spec, _timeout_result(spec), elapsed_ms)
        return self._finish(spec, to_result(*outcome), elapsed_ms)

    def _finish(self, spec: CheckSpec, result: CheckResult, elapsed_ms: float) -> CheckResult:
        """Stamp a check's answer with what the runner knows: name, time, duration, metadata."""
        return dataclasses.replace(
            result,
            name=spec.name,
            time=self._clock(),
            duration_ms=elapsed_ms,
            critical=spec.critical,
            component_type=result.component_type or spec.component_type,
            measurement=result.measurement or spec.measurement,
        )

    def _timed_out(self, spec: CheckSpec, started: float) -> CheckResult:
        elapsed_ms = (time.monotonic() - started) * 1000.0
        return self._finish(spec, _timeout_result(spec), elapsed_ms)


def _timeout_result(spec: CheckSpec) -> CheckResult:
    return CheckResult.fail(f"timed out after {spec.timeout_s:g} s")


def to_result(ok: bool, value: Any) -> CheckResult:
    """Turn what a check returned (or raised) into a :class:`CheckResult`.

    >>> to_result(True, False).message
    'returned False'
    >>> to_result(False, ConnectionRefusedError("refused")).message
    'ConnectionRefusedError: refused'
    >>> to_result(True, 42).message
    'returned 42 (int); a check returns True/False, None, a status or a CheckResult'
    """
    if not ok:
        return CheckResult.fail(_describe(value))
    if isinstance(value, CheckResult):
        return value
    if value is True or value is None:
        return CheckResult.ok()
    if value is False:
        return CheckResult.fail("returned False")
    if isinstance(value, str):
        try:
            return CheckResult(Status.parse(value))
        except ValueError:
            pass
    if inspect.isawaitable(value):
        if inspect.iscoroutine(value):
            value.close()
        return CheckResult.fail("returned an awaitable: declare the check with `async def`")
    return CheckResult.fail(
        f"returned {safe_repr(value, 200)} ({type(value).__name__}); "
        "a check returns True/False, None, a status or a CheckResult"
    )


def _describe(exc: BaseException) -> str:
    """``Type: message`` for an exception, never raising, never too long."""
    try:
        text = str(exc)
    except Exception:
        text = safe_repr(exc, 500)
    name = type(exc).__name__
    return f"{name}: {text[:500]}" if text else name


async def _call_in_thread(spec: CheckSpec, execution: Execution) -> Outcome | None:
    """Call a sync check in a daemon thread; give up on it at the deadline."""
    loop = asyncio.get_running_loop()
    delivered: asyncio.Future[Outcome] = loop.create_future()
    context = contextvars.copy_context()

    def deliver(outcome: Outcome) -> None:
        if not delivered.done():
            delivered.set_result(outcome)

    def call() -> Outcome:
        _deadline.set(execution.deadline)
        try:
            return True, spec.fn()
        except BaseException as exc:  # even SystemExit in a check is that check's failure
            return False, exc

    def target() -> None:
        outcome = context.run(call)
        execution.returned = True
        try:
            loop.call_soon_threadsafe(deliver, outcome)
        except RuntimeError:  # the loop is closed: whoever waited has long given up
            pass

    thread = threading.Thread(target=target, name=f"obskit-health-call-{spec.name}", daemon=True)
    execution.thread = thread
    thread.start()
    done, _ = await asyncio.wait({delivered}, timeout=_remaining(execution))
    if not done:
        delivered.cancel()
        return None  # timed out
    return delivered.result()


async def _call_async(fn: Callable[[], Any], execution: Execution) -> Outcome | None:
    """Run an async check as a task; cancel it (without waiting on it) at the deadline."""

    async def call() -> Any:
        _deadline.set(execution.deadline)  # the task runs in its own copy of the context
        return await fn()

    task = asyncio.ensure_future(call())
    done, _ = await asyncio.wait({task}, timeout=_remaining(execution))
    if not done:
        task.cancel()  # a check that swallows the cancellation runs on, unobserved
        task.add_done_callback(_consume)
        return None  # timed out
    if task.cancelled():
        return False, asyncio.CancelledError("the check was cancelled")
    exc = task.exception()
    return (False, exc) if exc is not None else (True, task.result())


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log "never retrieved"


def _remaining(execution: Execution) -> float:
    return max(0.0, execution.deadline - time.monotonic())


async def _wait_threadsafe(
    future: concurrent.futures.Future[CheckResult], timeout: float
) -> CheckResult | None:
    """Await a result another thread's loop will set; ``None`` if it is not there in time."""
    loop = asyncio.get_running_loop()
    arrived: asyncio.Future[CheckResult] = loop.create_future()

    def copy(_: concurrent.futures.Future[CheckResult]) -> None:
        def set_result() -> None:
            if not arrived.done():
                arrived.set_result(future.result())

        try:
            loop.call_soon_threadsafe(set_result)
        except RuntimeError:
            pass

    future.add_done_callback(copy)
    done, _ = await asyncio.wait({arrived}, timeout=max(0.0, timeout))
    return arrived.result() if done else None
