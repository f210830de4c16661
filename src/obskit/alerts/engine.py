"""The alert engine: metrics in, rules evaluated, state changes routed to channels.

One :class:`AlertEngine` owns a series store (:mod:`~obskit.alerts.store`), its rules' state
machines (:mod:`~obskit.alerts.state`), a router (:mod:`~obskit.alerts.routing`) and a
dispatcher (:mod:`~obskit.alerts.notify`). ``evaluate(now)`` is the one step that moves
everything: it runs every rule, routes what changed, queues what is due, sends each transition
to the pipeline (as an :class:`~obskit.signals.Alert`) and to the log. The engine keeps only
the windows its rules need: the metrics themselves belong to :mod:`obskit.metrics` (its store
is exported by the runtime's reader), which tells the engine every point as a sink.

The class is assembled by concept: its configuration methods (channels, rules, SLOs,
policies, exports) are in :mod:`~obskit.alerts.setup`, those acting on live alerts (silences,
acknowledgement, alerts raised by hand, history) in :mod:`~obskit.alerts.operations`;
evaluation, delivery and lifecycle are here. Each transition runs the rule's actions
(:mod:`~obskit.alerts.actions`), and each notification is enriched
(:mod:`~obskit.alerts.enrich`) on the delivery worker, before its first delivery.

Every time-based decision uses ``clock`` (or the ``now`` given), so a test clock drives the
whole engine; ``evaluation_interval_s`` starts a background thread calling ``evaluate()``.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from obskit import _runtime, diagnostics
from obskit._numbers import finite_number, refuse
from obskit.alerts.actions import AlertActions
from obskit.alerts.enrich import enrich
from obskit.alerts.history import History
from obskit.alerts.manual import ManualAlerts
from obskit.alerts.notify import Channel, Dispatcher, Notification
from obskit.alerts.operations import EngineOperations
from obskit.alerts.publish import Publisher, snapshot
from obskit.alerts.routing import Router, check_routing
from obskit.alerts.setup import MAX_WINDOW_BUCKETS, EngineSetup
from obskit.alerts.slo import SLO
from obskit.alerts.state import AlertInstance, RuleState
from obskit.alerts.store import MetricStore
from obskit.diagnostics import ConfigError
from obskit.signals import Alert

__all__ = ["MAX_WINDOW_BUCKETS", "AlertEngine"]


class AlertEngine(EngineSetup, EngineOperations):
    """Rules over metric windows, the Prometheus state machine, Alertmanager-style routing.

    >>> import obskit
    >>> from obskit.exporters import InMemoryExporter
    >>> obskit.init(service="docs", exporters=[memory := InMemoryExporter()])
    >>> clock = lambda: 1000.0
    >>> engine = AlertEngine(group_wait_s=0, group_interval_s=60, repeat_interval_s=3600,
    ...                      clock=clock)
    >>> _ = engine.add_rule(name="slow_checkout", metric="latency_ms", aggregation="max",
    ...                     window_s=60, op=">", threshold=500, for_s=0)
    >>> engine.observe("latency_ms", 812.0, route="/checkout")
    >>> [(a.rule, a.state, a.value, a.labels["route"]) for a in engine.evaluate()]
    [('slow_checkout', 'firing', 812.0, '/checkout')]
    >>> engine.close()
    >>> _ = obskit.flush()
    >>> [(a.rule, a.state) for a in memory.of_kind("alert")]   # also sent down the pipeline
    [('slow_checkout', 'firing')]
    >>> obskit.shutdown()
    """

    def __init__(
        self,
        *,
        group_wait_s: float = 30.0,
        group_interval_s: float = 300.0,
        repeat_interval_s: float = 4 * 3600.0,
        evaluation_interval_s: float | None = None,
        clock: Callable[[], float] = time.time,
        max_series_per_metric: int = 1000,
        window_buckets: int = 10,
        window_resolution_s: float | None = None,
        relative_accuracy: float = 0.01,
        default_channels: Iterable[str] = (),
        series_ttl_s: float | None = 3600.0,
        history_size: int = 1000,
        max_attempts: int = 5,
        retry_initial_backoff_s: float = 0.5,
        retry_max_backoff_s: float = 30.0,
        max_queue_size: int = 1000,
        external_labels: Mapping[str, str] | None = None,
    ) -> None:
        check_routing(group_wait_s, group_interval_s, repeat_interval_s)
        if evaluation_interval_s is not None and evaluation_interval_s <= 0:
            raise ConfigError("evaluation_interval_s must be > 0 (or None: evaluate by hand)")
        if window_buckets < 1:
            raise ConfigError("window_buckets must be at least 1")
        self.clock = clock
        self.evaluation_interval_s = evaluation_interval_s
        self.window_buckets = window_buckets
        if window_resolution_s is not None and window_resolution_s <= 0:
            raise ConfigError("window_resolution_s must be > 0 (or None: the evaluation interval)")
        self.window_resolution_s = window_resolution_s
        self.relative_accuracy = relative_accuracy
        self.default_channels = tuple(default_channels)
        self.series_ttl_s = series_ttl_s
        self.store = MetricStore(clock=clock, max_series_per_metric=max_series_per_metric)
        self.channels: dict[str, Channel] = {}
        self.router = Router(
            group_wait_s=group_wait_s,
            group_interval_s=group_interval_s,
            repeat_interval_s=repeat_interval_s,
            snapshot=self._snapshot,
            sends_resolved=lambda name: bool(
                getattr(self.channels.get(name), "send_resolved", True)
            ),
            resend_interval=lambda name: getattr(
                self.channels.get(name), "resend_interval_s", None
            ),
            evaluation_interval_s=evaluation_interval_s,
        )
        self.dispatcher = Dispatcher(
            self.channels,
            max_queue_size=max_queue_size,
            max_attempts=max_attempts,
            retry_initial_backoff_s=retry_initial_backoff_s,
            retry_max_backoff_s=retry_max_backoff_s,
            on_failure=self._delivery_failed,
            prepare=self._enrich,
        )
        self._rules: dict[str, RuleState] = {}
        self._manual = ManualAlerts()
        self._slos: dict[str, tuple[SLO, RuleState]] = {}
        if external_labels is not None and not all(
            isinstance(k, str) and isinstance(v, str) for k, v in external_labels.items()
        ):
            raise ConfigError("external_labels maps label names to string values")
        self._given_external = dict(external_labels or {})
        self._identity: tuple[str, int] | None = None
        self._external: dict[str, str] = {}
        self._lock = threading.RLock()
        self._history = History(history_size)
        self.actions = AlertActions(clock, self._history)
        self._publisher = Publisher()
        self._next_expiry = -float("inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        _live.add(self)

    @property
    def external_labels(self) -> dict[str, str]:
        """Labels on every alert of this engine: by default ``service`` (``obskit.init``'s)
        and ``instance`` (``host:pid``), then what ``external_labels=`` set (an empty value
        removes a label). They tell replicas' alerts apart in Alertmanager."""
        self._refresh_identity()
        return dict(self._external)

    def _refresh_identity(self) -> None:
        runtime = _runtime.peek()
        identity = (runtime.service if runtime is not None else "", os.getpid())
        if identity == self._identity:
            return
        self._identity = identity
        defaults = {
            "service": identity[0] or "unknown_service",
            "instance": f"{socket.gethostname()}:{identity[1]}",
        }
        merged = {**defaults, **self._given_external}
        self._external = {k: v for k, v in merged.items() if v != ""}
        for state in self._rules.values():
            state.set_external_labels(self._external)

    # -- metrics in ----------------------------------------------------------------------------

    def observe(
        self,
        metric: str,
        value: float,
        label_map: Mapping[str, Any] | None = None,
        /,
        *,
        timestamp: float | None = None,
        **labels: Any,
    ) -> None:
        """Record a sample of ``metric{labels}`` in this engine only (bad values are skipped).

        Labels come as keywords, or as a mapping (for names that are not identifiers).
        """
        number = finite_number(metric, value)
        merged = _labels(metric, label_map, labels)
        if number is not None and merged is not None and _time_ok(metric, timestamp):
            self.store.observe(metric, number, merged, timestamp)

    def increment(
        self,
        metric: str,
        amount: float = 1,
        label_map: Mapping[str, Any] | None = None,
        /,
        *,
        timestamp: float | None = None,
        **labels: Any,
    ) -> None:
        """Add to the counter ``metric{labels}`` in this engine only."""
        number = finite_number(metric, amount)
        merged = _labels(metric, label_map, labels)
        if number is not None and number < 0:
            refuse(metric, number, "a counter takes finite increments >= 0")
        elif number is not None and merged is not None and _time_ok(metric, timestamp):
            self.store.increment(metric, number, merged, timestamp)

    # -- evaluation ----------------------------------------------------------------------------

    def evaluate(self, now: float | None = None) -> list[Alert]:
        """Evaluate every rule at ``now`` (the clock by default); the state changes, as Alerts."""
        try:
            with self._lock:
                now = self.clock() if now is None else now
                self._refresh_identity()
                changes: list[Alert] = []
                for state in list(self._rules.values()):
                    try:
                        changed = state.evaluate(now)
                    except Exception as exc:
                        diagnostics.report(
                            f"alerts.rule.{state.rule.name}",
                            f"rule {state.rule.name!r} failed to evaluate: {exc!r}",
                        )
                        continue
                    for instance in changed:
                        changes.append(self._transition(instance, now))
                for instance in self._manual.expired(now):
                    self._manual.resolve(instance, now, by="obskit", comment="resolve_after_s")
                    changes.append(self._transition(instance, now))
                self.actions.expire(now)
                notifications = self._tick(now)
                self._housekeeping(now)
            self._send(notifications)
            self._publisher.publish(changes)
            return changes
        except Exception as exc:  # never into the app
            diagnostics.report("alerts.evaluate", f"alert evaluation failed: {exc!r}")
            return []

    def _transition(self, instance: AlertInstance, now: float, *, route: bool = True) -> Alert:
        rule = instance.rule
        alert = self._snapshot(instance, now)
        self._history.alert(alert.state, alert, now)
        self.actions.transition(instance, alert)
        if route:
            self.router.update(instance, rule.channels or self.default_channels, now)
        return alert

    def _snapshot(self, instance: AlertInstance, now: float) -> Alert:
        return snapshot(instance, now, self.router.muted_by(instance.labels, now))

    def _housekeeping(self, now: float) -> None:
        for silence_id, silence in list(self.router.silences.items()):
            if silence.ends_at < now - 86400.0:  # forget silences a day after they ended
                del self.router.silences[silence_id]
        if now >= self._next_expiry:  # scans of every series and every alert: not too often
            self._next_expiry = now + min(60.0, (self.series_ttl_s or 600.0) / 10)
            if self.series_ttl_s is not None:
                self.store.expire(now, self.series_ttl_s)
            self.router.forget_recurrences(now)
            grouped = {f for group in self.router.groups.values() for f in group.alerts}
            self.actions.forget(grouped | {i.fingerprint for i in self._instances()})

    def _tick(self, now: float) -> list[Notification]:
        """The notifications due at ``now``, with their alerts' action outcomes."""
        notifications = self.router.tick(now)
        for notification in notifications:
            self.actions.attach(notification)
        return notifications

    def _enrich(self, notification: Notification) -> None:
        """What else was going on (release, rising error groups, exemplar traces), added on
        the delivery worker: the evaluating (or triggering) thread never waits for it."""
        rules = {state.rule.name: state.rule for state in list(self._rules.values())}
        enrich(notification, rules, notification.timestamp)

    def _send(self, notifications: list[Notification]) -> None:
        for notification in notifications:
            self.dispatcher.submit(notification)
            self._history.notified(notification)

    def _delivery_failed(self, notification: Notification, exc: BaseException) -> None:
        self._history.add(
            "delivery_failed",
            self.clock(),
            channel=notification.channel,
            reason=notification.reason,
            error=repr(exc),
        )
        self._publisher.log_failure(notification, exc)

    # -- lifecycle -----------------------------------------------------------------------------

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until queued notifications are sent (or given up on); ``True`` if all left."""
        return self.dispatcher.flush(timeout_s)

    def start(self) -> None:
        """Start the background evaluator (no-op without ``evaluation_interval_s``)."""
        interval = self.evaluation_interval_s
        if interval is None or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._evaluate_periodically,
            args=(interval,),
            name="obskit-alert-eval",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the background evaluator."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)
        self._thread = None

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop evaluating, deliver what is queued within ``timeout_s``, stop the worker."""
        self.stop()
        self.dispatcher.close(timeout_s)

    def _after_fork_in_child(self) -> None:
        # Locks may have been held by the parent's threads, which do not exist here.
        evaluating = self._thread is not None and not self._stop.is_set()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = None
        self.store.after_fork_in_child()
        self.dispatcher.after_fork_in_child()
        self.actions.after_fork_in_child()
        self._history.after_fork_in_child()
        if evaluating:
            self.start()

    def _evaluate_periodically(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.evaluate()


_live: weakref.WeakSet[AlertEngine] = weakref.WeakSet()


def _reinit_after_fork() -> None:
    for engine in list(_live):
        engine._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)


def _labels(
    metric: str, label_map: Mapping[str, Any] | None, labels: dict[str, Any]
) -> dict[str, Any] | None:
    """Keyword labels over a positional mapping; ``None`` (refused, counted) if not a mapping."""
    if label_map is None:
        return labels
    if not isinstance(label_map, Mapping):
        refuse(metric, label_map, "labels go as keywords or one mapping")
        return None
    return {**label_map, **labels}


def _time_ok(metric: str, timestamp: Any) -> bool:
    """Whether ``timestamp`` is ``None`` or a finite UNIX time (else refused, counted)."""
    if timestamp is None or (
        isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool)
        and math.isfinite(timestamp)
    ):  # fmt: skip
        return True
    refuse(metric, timestamp, "timestamp must be a finite UNIX time")
    return False
