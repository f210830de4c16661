"""The alert engine: metrics in, rules evaluated, state changes routed to channels.

One :class:`AlertEngine` owns a series store (:mod:`~obskit.alerts.store`), its rules' state
machines (:mod:`~obskit.alerts.state`), a router (:mod:`~obskit.alerts.routing`) and a
dispatcher (:mod:`~obskit.alerts.notify`). ``evaluate(now)`` is the one step that moves
everything: it runs every rule, routes what changed, queues what is due, sends each transition
to the pipeline (as an :class:`~obskit.signals.Alert`) and to the log, and every
``export_interval_s`` sends the series as :class:`~obskit.signals.MetricPoint` signals.

Every time-based decision uses ``clock`` (or the ``now`` given), so a test clock drives the
whole engine; ``evaluation_interval_s`` starts a background thread calling ``evaluate()``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from obskit import _runtime, diagnostics, metrics
from obskit.alerts.loading import RuleSet, parse_rules, read_rule_file
from obskit.alerts.notify import Channel, Dispatcher, Notification
from obskit.alerts.policies import EscalationPolicy, InhibitRule, Silence
from obskit.alerts.routing import Router
from obskit.alerts.rules import AlertRule
from obskit.alerts.state import AlertInstance, RuleState
from obskit.alerts.store import MetricStore, WindowSpec
from obskit.diagnostics import ConfigError
from obskit.signals import Alert, MetricPoint

__all__ = ["AlertEngine"]


def check_routing(group_wait_s: float, group_interval_s: float, repeat_interval_s: float) -> None:
    """Refuse routing settings that cannot mean what they say (alertmanager#3370)."""
    if group_wait_s < 0 or group_interval_s <= 0 or repeat_interval_s <= 0:
        raise ConfigError("group_wait_s must be >= 0, group_interval_s and repeat_interval_s > 0")
    if repeat_interval_s < group_interval_s:
        raise ConfigError(
            f"repeat_interval_s ({repeat_interval_s:g}) is shorter than group_interval_s "
            f"({group_interval_s:g}): a group is only looked at every group_interval_s, so "
            "notifications could not repeat that often. Set repeat_interval_s >= "
            "group_interval_s."
        )


class AlertEngine:
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
        relative_accuracy: float = 0.01,
        default_channels: Iterable[str] = (),
        export_interval_s: float | None = 60.0,
        series_ttl_s: float | None = 3600.0,
        history_size: int = 1000,
        max_attempts: int = 5,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
        max_queue: int = 1000,
    ) -> None:
        check_routing(group_wait_s, group_interval_s, repeat_interval_s)
        if evaluation_interval_s is not None and evaluation_interval_s <= 0:
            raise ConfigError("evaluation_interval_s must be > 0 (or None: evaluate by hand)")
        if window_buckets < 1:
            raise ConfigError("window_buckets must be at least 1")
        self.clock = clock
        self.evaluation_interval_s = evaluation_interval_s
        self.window_buckets = window_buckets
        self.relative_accuracy = relative_accuracy
        self.default_channels = tuple(default_channels)
        self.export_interval_s = export_interval_s
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
        )
        self.dispatcher = Dispatcher(
            self.channels,
            max_queue=max_queue,
            max_attempts=max_attempts,
            retry_initial_s=retry_initial_s,
            retry_max_s=retry_max_s,
            on_failure=self._delivery_failed,
        )
        self._rules: dict[str, RuleState] = {}
        self._lock = threading.RLock()
        self._history: deque[dict[str, Any]] = deque(maxlen=history_size)
        self._fired: Counter[str] = Counter()
        self._ack_delays: list[float] = []
        self._resolve_delays: list[float] = []
        self._next_export: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._log: Any = None

    # -- configuration -------------------------------------------------------------------------

    def add_channel(self, name: str, channel: Channel) -> None:
        """Register ``channel`` under ``name`` (rules and escalation levels refer to it)."""
        if not callable(getattr(channel, "send", None)):
            raise ConfigError(f"channel {name!r} needs a send(notification) method")
        self.channels[name] = channel

    def add_rule(
        self, rule: AlertRule | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> AlertRule:
        """Add a rule (an :class:`AlertRule`, a dict, or its fields as keywords)."""
        if rule is None or isinstance(rule, Mapping):
            data = {**(rule or {}), **fields}
            parsed = parse_rules([data], source="add_rule", **self._known())
        else:
            parsed = parse_rules([rule], source="add_rule", **self._known())
        self._install(parsed)
        return parsed.rules[0]

    def load_rules(self, source: str | Path | Mapping[str, Any] | list[Any]) -> list[AlertRule]:
        """Add every rule (and inhibit rule, escalation policy) of a file or data; all or none."""
        if isinstance(source, (str, Path)):
            data, name = read_rule_file(source), Path(source).name
        else:
            data, name = source, "rules"
        parsed = parse_rules(data, source=name, **self._known())
        self._install(parsed)
        return parsed.rules

    def remove_rule(self, name: str) -> None:
        """Remove a rule; its alerts disappear without notification."""
        with self._lock:
            state = self._rules.pop(name, None)
            if state is not None:
                self.store.unwatch(state.rule.metric, state.spec)

    def rules(self) -> list[AlertRule]:
        return [state.rule for state in self._rules.values()]

    def add_inhibit_rule(self, rule: InhibitRule | None = None, /, **fields: Any) -> InhibitRule:
        """Mute alerts matching ``target_matchers`` while one matching ``source_matchers`` fires."""
        self._install(parse_rules({"inhibit_rules": [rule or fields]}, source="add_inhibit_rule"))
        return self.router.inhibit_rules[-1]

    def add_escalation_policy(
        self, policy: EscalationPolicy | None = None, /, **fields: Any
    ) -> EscalationPolicy:
        """Levels of channels notified while an alert fires unacknowledged."""
        parsed = parse_rules(
            {"escalation_policies": [policy or fields]},
            source="add_escalation_policy",
            **self._known(),
        )
        self._install(parsed)
        return parsed.escalation_policies[0]

    def _known(self) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "existing_rules": self._rules,
            "existing_policies": self.router.policies,
        }

    def _install(self, parsed: RuleSet) -> None:
        with self._lock:
            for policy in parsed.escalation_policies:
                self.router.policies[policy.name] = policy
            self.router.inhibit_rules.extend(parsed.inhibit_rules)
            for rule in parsed.rules:
                spec = self._spec(rule)
                self.store.watch(rule.metric, spec)
                self._rules[rule.name] = RuleState(rule, spec, self.store)
        if parsed.rules:
            self.start()

    def _spec(self, rule: AlertRule) -> WindowSpec:
        if rule.resolution_s is not None:
            size = round(rule.window_s / rule.resolution_s)
        else:
            size = self.window_buckets
        accuracy = self.relative_accuracy if rule.is_percentile else None
        return WindowSpec(rule.window_s / size, size, accuracy)

    # -- metrics in ----------------------------------------------------------------------------

    def observe(
        self, metric: str, value: float, /, timestamp: float | None = None, **labels: Any
    ) -> None:
        """Record a sample of ``metric{labels}`` in this engine only (bad values are skipped)."""
        number = metrics.check_value(metric, value)
        if number is not None:
            self.store.observe(metric, number, labels, timestamp)

    def increment(
        self, metric: str, amount: float = 1, /, timestamp: float | None = None, **labels: Any
    ) -> None:
        """Add to the counter ``metric{labels}`` in this engine only."""
        number = metrics.check_value(metric, amount)
        if number is not None and number >= 0:
            self.store.increment(metric, number, labels, timestamp)

    # -- evaluation ----------------------------------------------------------------------------

    def evaluate(self, now: float | None = None) -> list[Alert]:
        """Evaluate every rule at ``now`` (the clock by default); the state changes, as Alerts."""
        try:
            with self._lock:
                now = self.clock() if now is None else now
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
                notifications = self.router.tick(now)
                self._housekeeping(now)
            self._send(notifications)
            self._publish(changes)
            return changes
        except Exception as exc:  # never into the app
            diagnostics.report("alerts.evaluate", f"alert evaluation failed: {exc!r}")
            return []

    def _transition(self, instance: AlertInstance, now: float) -> Alert:
        rule = instance.rule
        alert = self._snapshot(instance, now)
        self._remember(alert.state, alert, now)
        if instance.state == "firing":
            self._fired[rule.severity] += 1
        elif instance.state == "resolved" and instance.fired_at is not None:
            self._resolve_delays.append(now - instance.fired_at)
        self.router.update(instance, rule.channels or self.default_channels, now)
        return alert

    def _snapshot(self, instance: AlertInstance, now: float) -> Alert:
        rule = instance.rule
        details: dict[str, Any] = {
            "metric": rule.metric,
            "aggregation": rule.aggregation,
            "window_s": rule.window_s,
            "op": rule.op,
            "threshold": rule.threshold,
        }
        if instance.score is not None:
            details["score"] = instance.score
        if instance.acknowledged_at is not None:
            details.update(
                acknowledged_by=instance.acknowledged_by, comment=instance.acknowledged_comment
            )
        if instance.resolved_by or instance.resolved_comment:
            details.update(resolved_by=instance.resolved_by, comment=instance.resolved_comment)
        muted = self.router.muted_by(instance.labels, now)
        if muted is not None:
            details["muted_by"] = muted
        runtime = _runtime.peek()
        return Alert(
            timestamp=now,
            rule=rule.name,
            state=instance.state,
            severity=rule.severity,
            value=instance.value,
            labels=dict(instance.labels),
            annotations=dict(instance.annotations),
            active_since=instance.active_at,
            fingerprint=instance.fingerprint,
            service=runtime.settings.service if runtime is not None else "",
            fired_at=instance.fired_at,
            resolved_at=instance.resolved_at,
            details=details,
        )

    def _housekeeping(self, now: float) -> None:
        for silence_id, silence in list(self.router.silences.items()):
            if silence.ends_at < now - 86400.0:  # forget silences a day after they ended
                del self.router.silences[silence_id]
        if self.series_ttl_s is not None:
            self.store.expire(now - self.series_ttl_s)
        if self.export_interval_s is not None and _runtime.peek() is not None:
            if self._next_export is None:
                self._next_export = now + self.export_interval_s
            elif now >= self._next_export:
                self._next_export = now + self.export_interval_s
                self._export_points(now)

    def _export_points(self, now: float) -> None:
        runtime = _runtime.peek()
        service = runtime.settings.service if runtime is not None else ""
        for metric in list(self.store.metrics.values()):
            with metric.lock:
                points = [
                    MetricPoint(
                        timestamp=now,
                        name=metric.name,
                        value=series.total if metric.kind == "counter" else series.last,
                        labels=dict(series.labels),
                        metric_type="counter" if metric.kind == "counter" else "gauge",
                        service=service,
                    )
                    for series in metric.series
                    if series.count
                ]
            for point in points:
                _runtime.emit(point)

    # -- delivery and publication ----------------------------------------------------------------

    def _send(self, notifications: list[Notification]) -> None:
        for notification in notifications:
            self.dispatcher.submit(notification)
            self._history.append(
                {
                    "at": notification.timestamp,
                    "event": "notified",
                    "channel": notification.channel,
                    "reason": notification.reason,
                    "status": notification.status,
                    "alerts": [a.fingerprint for a in notification.alerts],
                }
            )

    def _publish(self, alerts: list[Alert]) -> None:
        if not alerts:
            return
        if self._log is None:
            from obskit.logging import get_logger

            self._log = get_logger("obskit.alerts")
        for alert in alerts:
            _runtime.emit(
                dataclasses.replace(alert, labels=dict(alert.labels), details=dict(alert.details))
            )
            level = {"firing": "warning", "pending": "info"}.get(alert.state, "info")
            if alert.state == "firing" and alert.severity in ("error", "critical"):
                level = "error"
            self._log.log(
                level,
                f"alert {alert.rule} {alert.state}",
                alert=alert.rule,
                state=alert.state,
                severity=alert.severity,
                value=alert.value,
                labels=alert.labels,
                fingerprint=alert.fingerprint,
            )

    def _delivery_failed(self, notification: Notification, exc: BaseException) -> None:
        self._history.append(
            {
                "at": self.clock(),
                "event": "delivery_failed",
                "channel": notification.channel,
                "reason": notification.reason,
                "error": repr(exc),
            }
        )

    def _remember(self, event: str, alert: Alert, now: float, **extra: Any) -> None:
        self._history.append(
            {
                "at": now,
                "event": event,
                "rule": alert.rule,
                "fingerprint": alert.fingerprint,
                "severity": alert.severity,
                "value": alert.value,
                **extra,
            }
        )

    # -- operators: what is going on, and acting on it -----------------------------------------

    def active(self) -> list[Alert]:
        """Every pending and firing alert, as Alerts (``details["muted_by"]`` when muted)."""
        with self._lock:
            now = self.clock()
            return [
                self._snapshot(instance, now)
                for state in self._rules.values()
                for instance in state.instances.values()
            ]

    def silence(
        self,
        matchers: Any,
        *,
        duration_s: float | None = 3600.0,
        starts_at: float | None = None,
        ends_at: float | None = None,
        comment: str = "",
        created_by: str = "",
    ) -> Silence:
        """Mute notifications of alerts matching ``matchers`` for ``duration_s`` (or until
        ``ends_at``). Alerts are still evaluated; the end of the silence notifies them."""
        now = self.clock()
        start = now if starts_at is None else starts_at
        if ends_at is None:
            if duration_s is None:
                raise ConfigError("a silence needs duration_s or ends_at")
            ends_at = start + duration_s
        try:
            silence = Silence.create(
                matchers, starts_at=start, ends_at=ends_at, comment=comment, created_by=created_by
            )
        except ValueError as exc:
            raise ConfigError(f"silence: {exc}") from None
        with self._lock:
            self.router.silences[silence.id] = silence
            self._history.append({"at": now, "event": "silenced", **silence.to_dict()})
        return silence

    def expire_silence(self, silence_id: str) -> None:
        """End a silence now."""
        with self._lock:
            silence = self.router.silences.get(silence_id)
            if silence is not None:
                silence.ends_at = min(silence.ends_at, self.clock())
                self._history.append({"at": self.clock(), "event": "unsilenced", "id": silence_id})

    def silences(self) -> list[Silence]:
        """Silences not yet over (active or starting later)."""
        now = self.clock()
        return [s for s in self.router.silences.values() if s.ends_at > now]

    def acknowledge(self, alert: Alert | str, *, by: str = "", comment: str = "") -> Alert | None:
        """Someone took ``alert`` (an Alert or fingerprint): escalation stops, channels that
        were told it fires are told who took it; ``None`` if it is not active any more."""
        fingerprint = alert.fingerprint if isinstance(alert, Alert) else alert
        with self._lock:
            now = self.clock()
            instance = self._find(fingerprint)
            if instance is None:
                return None
            instance.acknowledged_at = now
            instance.acknowledged_by, instance.acknowledged_comment = by, comment
            start = instance.fired_at if instance.fired_at is not None else instance.active_at
            self._ack_delays.append(now - start)
            self.router.acknowledge(instance, now)
            snapshot = dataclasses.replace(self._snapshot(instance, now), state="acknowledged")
            self._remember("acknowledged", snapshot, now, by=by, comment=comment)
            notifications = self.router.tick(now)
        self._send(notifications)
        self._publish([snapshot])
        return snapshot

    def resolve(self, alert: Alert | str, *, by: str = "", comment: str = "") -> Alert | None:
        """Declare ``alert`` resolved by hand; if its condition still holds it starts again
        (pending) at the next evaluation. ``None`` if it is not active any more."""
        fingerprint = alert.fingerprint if isinstance(alert, Alert) else alert
        with self._lock:
            now = self.clock()
            for state in self._rules.values():
                instance = state.resolve(fingerprint, now, by=by, comment=comment)
                if instance is not None:
                    break
            else:
                return None
            snapshot = self._transition(instance, now)
            self._history[-1].update(by=by, comment=comment)
            notifications = self.router.tick(now)
        self._send(notifications)
        self._publish([snapshot])
        return snapshot

    def _find(self, fingerprint: str) -> AlertInstance | None:
        for state in self._rules.values():
            instance = state.instances.get(fingerprint)
            if instance is not None:
                return instance
        return None

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The latest events (state changes, notifications, acknowledgements, silences)."""
        with self._lock:
            events = list(self._history)
        return events[-limit:] if limit else events

    def stats(self) -> dict[str, Any]:
        """Counts and times: alerts fired by severity, mean time to acknowledge and to resolve
        (seconds, from firing), notifications per channel, series and guard counters."""
        with self._lock:
            return {
                "rules": len(self._rules),
                "active": sum(len(s.instances) for s in self._rules.values()),
                "fired_by_severity": dict(self._fired),
                "mean_time_to_acknowledge_s": _mean(self._ack_delays),
                "mean_time_to_resolve_s": _mean(self._resolve_delays),
                "notifications": {
                    name: dataclasses.asdict(stats) for name, stats in self.dispatcher.stats.items()
                },
                "store": self.store.stats(),
            }

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

    def _evaluate_periodically(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.evaluate()


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
