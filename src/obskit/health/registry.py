"""HealthRegistry: where checks are registered, run, cached, scheduled and remembered.

``obskit.health`` exposes one default registry through module-level functions; a
``HealthRegistry()`` is a fresh, independent one with the same methods (for tests, or a
library that keeps its checks apart). Time comes from the injected ``clock`` (seconds since the
epoch, ``time.time`` by default): result times, caching, history and the schedule all read it,
so tests drive them without sleeping. Only timeouts and durations use real time.

Events: when a check's reported status changes, the registry logs it on the
``obskit.health`` logger and emits a :class:`obskit.signals.HealthRecord` signal naming the
changed checks; every run of a check also sets the ``obskit.health.status`` gauge (1 pass, 0.5
warn, 0 fail) and records ``obskit.health.check.duration``, labelled ``check=<name>``.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from obskit import _runtime, diagnostics, metrics
from obskit._actions import ActionRunner, as_action
from obskit.diagnostics import ConfigError
from obskit.health._validate import (
    Tags,
    at_least_one,
    non_negative,
    positive,
    require,
    valid_callable,
    valid_measurement,
    valid_name,
    valid_tags,
)
from obskit.health.events import log_action, log_change
from obskit.health.model import CheckResult, HealthReport, Status, aggregate
from obskit.health.runner import GRACE_S, Runner
from obskit.health.scheduler import LoopThread
from obskit.health.state import CheckSpec

if TYPE_CHECKING:
    from obskit.health.http import ASGIApp, HealthServer, Verbose, WSGIApp

__all__ = ["HealthRegistry"]

#: Each check's latest status (1 pass, 0.5 warn, 0 fail) and how long its runs take.
health_status = metrics.gauge("obskit.health.status", "1", "health check status: 1, 0.5 or 0")
check_duration = metrics.histogram("obskit.health.check.duration", "s", "health check run time")

F = TypeVar("F", bound=Callable[..., Any])

_live: weakref.WeakSet[HealthRegistry] = weakref.WeakSet()


class HealthRegistry:
    """A set of named health checks and everything that runs and serves them.

    >>> import obskit
    >>> obskit.init(exporters=[])  # (keep the doctest's output clean)
    >>> registry = HealthRegistry()
    >>> @registry.check("db", timeout_s=2)
    ... def db_ok() -> bool:
    ...     return True
    >>> registry.register("cache", lambda: False, critical=False)
    >>> report = registry.run()
    >>> report.status, report.checks["cache"].message
    (<Status.WARN: 'warn'>, 'returned False')
    >>> obskit.shutdown()
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        cache_ttl_s: float = 1.0,
        history_size: int = 50,
        name: str = "registry",
    ) -> None:
        """``clock`` drives result times, the cache, history and the schedule; results are
        reused for ``cache_ttl_s``; ``history_size`` results are kept per check; ``name`` names
        the background thread (``obskit-health-loop-<name>``)."""
        require(cache_ttl_s >= 0, f"cache_ttl_s must be >= 0, got {cache_ttl_s!r}")
        require(history_size >= 1, f"history_size must be >= 1, got {history_size!r}")
        self.clock = clock
        self.cache_ttl_s = cache_ttl_s
        self.history_size = history_size
        self._checks: dict[str, CheckSpec] = {}
        self._lock = threading.Lock()
        self._runner = Runner(clock, self._lock, self._record)
        self._actions = ActionRunner(clock=clock, on_outcome=log_action, name="health-action")
        self._loop = LoopThread(
            f"obskit-health-loop-{name}", self._specs, clock, self._run_scheduled
        )
        _live.add(self)

    # -- registration ----------------------------------------------------------------------

    @overload
    def check(self, name: F, /) -> F: ...

    @overload
    def check(
        self,
        name: str | None = None,
        /,
        *,
        critical: bool = True,
        timeout_s: float = 5.0,
        interval_s: float | None = None,
        tags: Tags = (),
        failure_threshold: int = 1,
        success_threshold: int = 1,
        component_type: str | None = None,
        measurement: str | None = None,
        cache_ttl_s: float | None = None,
        on_status_change: Callable[..., Any] | None = None,
    ) -> Callable[[F], F]: ...

    def check(self, name: Any = None, /, **options: Any) -> Any:
        """Decorator registering a sync or async function as a check (named after it by default).

        Options are those of :meth:`register`. The function is returned unchanged.
        """
        if callable(name):
            self.register(name.__name__, name)
            return name

        def decorate(fn: F) -> F:
            self.register(name or getattr(fn, "__name__", ""), fn, **options)
            return fn

        return decorate

    def register(
        self,
        name: str,
        fn: Callable[[], Any],
        *,
        critical: bool = True,
        timeout_s: float = 5.0,
        interval_s: float | None = None,
        tags: Tags = (),
        failure_threshold: int = 1,
        success_threshold: int = 1,
        component_type: str | None = None,
        measurement: str | None = None,
        cache_ttl_s: float | None = None,
        on_status_change: Callable[..., Any] | None = None,
    ) -> None:
        """Register check ``fn`` under ``name``; a mistake raises ``ConfigError`` right here.

        ``fn`` takes no arguments and returns ``True``/``False``, ``None`` (pass), a status or a
        :class:`CheckResult`, or raises (fail). ``critical=False`` makes its failure a warn of the
        whole report. ``interval_s`` runs it in the background; ``run()`` then serves its latest
        result. ``failure_threshold``/``success_threshold`` damp flapping (see
        :mod:`obskit.health.state`). ``component_type`` and ``measurement`` name it in the IETF
        report (``"name:measurement"``); ``cache_ttl_s`` overrides the registry's cache time.
        ``on_status_change`` (a function, or an :class:`obskit.alerts.Action` for its timeout and
        rate limit) is called with the new :class:`CheckResult` and the previous status (``None``
        at the first report) on a worker thread each time the reported status changes (a first
        report of pass is no change); its outcome is logged on ``obskit.health`` (see
        :mod:`obskit._actions`).
        """
        spec = CheckSpec(
            name=valid_name(name),
            fn=valid_callable(name, fn),
            is_async=_is_async(fn),
            critical=bool(critical),
            timeout_s=positive(name, "timeout_s", timeout_s),
            interval_s=None if interval_s is None else positive(name, "interval_s", interval_s),
            tags=valid_tags(name, tags),
            failure_threshold=at_least_one(name, "failure_threshold", failure_threshold),
            success_threshold=at_least_one(name, "success_threshold", success_threshold),
            component_type=component_type or getattr(fn, "component_type", None) or "component",
            measurement=valid_measurement(name, measurement or getattr(fn, "measurement", None)),
            cache_ttl_s=non_negative(name, "cache_ttl_s", cache_ttl_s),
            history_size=self.history_size,
            on_status_change=as_action(
                on_status_change, f"health check {name!r}: on_status_change"
            ),
        )
        with self._lock:
            if spec.name in self._checks:
                raise ConfigError(
                    f"a health check named {spec.name!r} is already registered; pick another "
                    f"name, or unregister({spec.name!r}) first to replace it"
                )
            self._checks[spec.name] = spec
        if spec.interval_s is not None:
            self._loop.ensure_started()
            self._loop.wake()

    def unregister(self, name: str) -> None:
        """Remove a check, its state and its history."""
        with self._lock:
            self._get(name)
            del self._checks[name]

    def enable(self, name: str) -> None:
        """Run and report the check again (state and history were kept); an interval check
        that was disabled runs at once, as a newly registered one does."""
        with self._lock:
            spec = self._get(name)
            if not spec.enabled:
                spec.state.last_started = None  # due now, not one interval after its last run
            spec.enabled = True
        self._loop.wake()

    def disable(self, name: str) -> None:
        """Leave the check out of runs, reports and the schedule until ``enable``."""
        with self._lock:
            self._get(name).enabled = False

    def clear(self) -> None:
        """Unregister every check."""
        with self._lock:
            self._checks.clear()

    def names(self) -> list[str]:
        """The registered check names, in registration order."""
        with self._lock:
            return list(self._checks)

    # -- running ---------------------------------------------------------------------------

    def run(self, tags: Tags = None, *, fresh: bool = False) -> HealthReport:
        """Run the checks (those with any of ``tags``), concurrently; the aggregated report.

        Results younger than the cache time, and interval checks' latest results, are served
        without running the check again; ``fresh=True`` runs every selected check now.
        """
        started = time.perf_counter()
        specs = self._select(tags)
        results, todo = self._from_cache(specs, fresh)
        if todo:
            if threading.current_thread() is self._loop.thread:
                for spec in todo:  # a check calling run() on its own registry would deadlock
                    results[spec.name] = _fail_now(spec, self.clock(), "run() called from a check")
            else:
                results.update(self._run_blocking(todo))
        return self._report(specs, results, started)

    async def run_async(self, tags: Tags = None, *, fresh: bool = False) -> HealthReport:
        """:meth:`run` for async code: async checks run on the caller's event loop."""
        started = time.perf_counter()
        specs = self._select(tags)
        results, todo = self._from_cache(specs, fresh)
        if todo:
            self._loop.ensure_started()
            fresh_results: dict[str, CheckResult] = {}
            changed = await self._runner.run_all(todo, fresh_results)
            results.update(fresh_results)
            self._publish(changed)
        return self._report(specs, results, started)

    def force(self, name: str) -> CheckResult:
        """Run one check now, cache or schedule notwithstanding (sharing a call in flight)."""
        with self._lock:
            spec = self._get(name)
        return self._run_blocking([spec])[name]

    def history(self, name: str, limit: int | None = None) -> list[CheckResult]:
        """The check's last results (at most ``limit``), oldest first."""
        with self._lock:
            results = list(self._get(name).state.history)
        return results[-limit:] if limit is not None and limit > 0 else results

    def latest(self, name: str) -> CheckResult | None:
        """The check's last reported result, without running it (``None`` before its first run)."""
        with self._lock:
            return self._get(name).state.latest

    # -- endpoints (see obskit.health.http) ------------------------------------------------

    def asgi_app(self, *, verbose: Verbose = None, token: str | None = None) -> ASGIApp:
        """An ASGI app answering ``/health``, ``/health/live``, ``/health/ready``, ...

        Details go to loopback clients and to ``Authorization: Bearer <token>`` by default
        (see :mod:`obskit.health.http`); everyone else sees the status.
        """
        from obskit.health.http import make_asgi_app

        self._loop.ensure_started()
        return make_asgi_app(self, verbose=verbose, token=token)

    def wsgi_app(self, *, verbose: Verbose = None, token: str | None = None) -> WSGIApp:
        """A WSGI app answering ``/health``, ``/health/live``, ``/health/ready``, ..."""
        from obskit.health.http import make_wsgi_app

        self._loop.ensure_started()
        return make_wsgi_app(self, verbose=verbose, token=token)

    def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        verbose: Verbose = None,
        token: str | None = None,
    ) -> HealthServer:
        """Serve the endpoints from a standard-library server in a daemon thread.

        ``port=0`` picks a free port: read it from the returned server's ``.port``; stop it
        with ``.close()``.
        """
        from obskit.health.http import HealthServer

        return HealthServer(self, host, port, verbose=verbose, token=token)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background thread now (it also starts with the first interval check)."""
        self._loop.ensure_started()

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the background thread. Checks stay registered; using the registry restarts it."""
        self._loop.stop(timeout_s)

    def __enter__(self) -> HealthRegistry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    def _get(self, name: str) -> CheckSpec:
        try:
            return self._checks[name]
        except KeyError:
            known = ", ".join(repr(n) for n in self._checks) or "none"
            raise ConfigError(f"no health check named {name!r}; registered: {known}") from None

    def _specs(self) -> list[CheckSpec]:
        with self._lock:
            return list(self._checks.values())

    def _select(self, tags: Tags) -> list[CheckSpec]:
        wanted = None if tags is None else frozenset([tags] if isinstance(tags, str) else tags)
        return [
            spec
            for spec in self._specs()
            if spec.enabled and (wanted is None or spec.tags & wanted)
        ]

    def _from_cache(
        self, specs: list[CheckSpec], fresh: bool
    ) -> tuple[dict[str, CheckResult], list[CheckSpec]]:
        now = self.clock()
        cached: dict[str, CheckResult] = {}
        todo: list[CheckSpec] = []
        for spec in specs:
            latest = spec.state.latest
            if fresh or latest is None:
                todo.append(spec)
                continue
            if spec.interval_s is not None:  # the scheduler keeps it fresh
                ttl = spec.interval_s + spec.timeout_s + GRACE_S
            else:
                ttl = self.cache_ttl_s if spec.cache_ttl_s is None else spec.cache_ttl_s
            if 0 <= now - latest.time < ttl:  # a clock stepped back expires the cache
                cached[spec.name] = latest
            else:
                todo.append(spec)
        return cached, todo

    def _run_blocking(self, specs: list[CheckSpec]) -> dict[str, CheckResult]:
        """Run ``specs`` on the loop thread and wait; never longer than the largest timeout."""
        results: dict[str, CheckResult] = {}
        wait_s = max(spec.timeout_s for spec in specs) + GRACE_S
        future = self._loop.submit(self._runner.run_all(specs, results))
        try:
            self._publish(future.result(timeout=wait_s))
        except concurrent.futures.TimeoutError:
            diagnostics.report(
                "health.loop_blocked",
                "health checks did not answer in time: an async check may block the event loop",
            )
        except Exception as exc:
            diagnostics.report("health.run", f"running health checks failed: {exc!r}")
        now = self.clock()
        for spec in specs:  # whatever did not make it is that check's failure, not the app's
            if spec.name not in results:
                results[spec.name] = _fail_now(spec, now, f"timed out after {spec.timeout_s:g} s")
        return results

    async def _run_scheduled(self, spec: CheckSpec) -> None:
        try:
            _, changed = await self._runner.run_one(spec)
            self._publish([spec.name] if changed else [])
        except Exception as exc:
            diagnostics.report("health.scheduler", f"scheduled check {spec.name!r} failed: {exc!r}")

    def _record(self, spec: CheckSpec, raw: CheckResult) -> tuple[CheckResult, bool]:
        """Apply thresholds, remember the result, log a status change, feed the metrics."""
        with self._lock:
            result, previous = spec.state.record(
                raw, spec.failure_threshold, spec.success_threshold
            )
        health_status.set(result.status.gauge, check=spec.name)
        check_duration.record(result.duration_ms / 1000.0, check=spec.name)
        self._actions.expire()
        if result.status is previous:
            return result, False
        log_change(result, previous)
        if spec.on_status_change is not None and (
            previous is not None or result.status is not Status.PASS
        ):
            self._actions.run(
                spec.on_status_change, "on_status_change", spec.name, result, previous
            )
        return result, True

    def _publish(self, changed: list[str]) -> None:
        """Emit the registry's current state as a signal when some check changed status."""
        if not changed:
            return
        _runtime.current()  # the signal starts the default setup anyway: let it name the service
        specs = [s for s in self._specs() if s.enabled and s.state.latest is not None]
        results = {s.name: s.state.latest for s in specs if s.state.latest is not None}
        report = self._report(specs, results, None)
        _runtime.emit(report.to_signal(changed))

    def _report(
        self, specs: list[CheckSpec], results: dict[str, CheckResult], started: float | None
    ) -> HealthReport:
        ordered = {s.name: results[s.name] for s in specs if s.name in results}
        runtime = _runtime.peek()
        return HealthReport(
            status=aggregate(ordered.values()),
            checks=ordered,
            time=self.clock(),
            duration_ms=0.0 if started is None else (time.perf_counter() - started) * 1000.0,
            service=runtime.service if runtime is not None else None,
            release=runtime.release if runtime is not None else None,
        )

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._runner = Runner(self.clock, self._lock, self._record)
        self._actions.after_fork_in_child()
        for spec in self._checks.values():
            spec.state.execution = None  # its thread stayed in the parent
        self._loop.after_fork_in_child()


def _fail_now(spec: CheckSpec, now: float, message: str) -> CheckResult:
    return CheckResult(
        Status.FAIL,
        message,
        name=spec.name,
        time=now,
        critical=spec.critical,
        component_type=spec.component_type,
        measurement=spec.measurement,
    )


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object whose __call__ is async
    )


def stop_all(timeout_s: float = 2.0) -> None:
    """Stop every registry's background thread (``obskit.shutdown()`` calls this)."""
    for registry in list(_live):
        registry.close(timeout_s)


def _after_fork_in_child() -> None:
    for registry in list(_live):
        registry._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
