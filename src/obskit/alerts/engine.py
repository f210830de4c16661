"""The alert engine: metrics in, rules evaluated, state changes routed to channels.

One :class:`AlertEngine` owns a series store (:mod:`~obskit.alerts.store`), its rules' state
machines (:mod:`~obskit.alerts.state`), a router (:mod:`~obskit.alerts.routing`) and a
dispatcher (:mod:`~obskit.alerts.notify`). ``evaluate(now)`` is the one step that moves
everything: it runs every rule, routes what changed, queues what is due, sends each transition
to the pipeline (as an :class:`~obskit.signals.Alert`) and to the log. The engine keeps only
the windows its rules need: the metrics themselves belong to :mod:`obskit.metrics` (its store
is exported by the runtime's reader), which tells the engine every point as a sink.

Every time-based decision uses ``clock`` (or the ``now`` given), so a test clock drives the
whole engine; ``evaluation_interval_s`` starts a background thread calling ``evaluate()``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from obskit import _runtime, diagnostics
from obskit._numbers import finite_number, refuse
from obskit.alerts.actions import AlertActions
from obskit.alerts.declared import declared_metrics
from obskit.alerts.enrich import enrich
from obskit.alerts.export import Export
from obskit.alerts.history import History
from obskit.alerts.loading import RuleSet, describe_errors, parse_rules, read_rule_file
from obskit.alerts.manual import ManualAlerts
from obskit.alerts.notify import Channel, Dispatcher, Notification
from obskit.alerts.policies import EscalationPolicy, InhibitRule, Silence
from obskit.alerts.publish import Publisher, snapshot
from obskit.alerts.routing import Router, check_routing
from obskit.alerts.rules import AlertRule, RuleError
from obskit.alerts.slo import SLO
from obskit.alerts.state import AlertInstance, RuleState
from obskit.alerts.store import MetricStore, WindowSpec
from obskit.alerts.window import BucketSpec
from obskit.diagnostics import ConfigError
from obskit.signals import Alert

__all__ = ["MAX_WINDOW_BUCKETS", "AlertEngine"]

#: The most buckets a window gets by default (a 6 h window at 15 s evaluations slides by 60 s).
MAX_WINDOW_BUCKETS = 360


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

    def load_rules(
        self,
        source: str | Path | Mapping[str, Any] | list[Any],
        *,
        check_channels: bool = True,
    ) -> list[AlertRule]:
        """Add every rule (and inhibit rule, escalation policy) of a file or data; all or none.

        ``check_channels=False`` accepts channel names not added yet (to export the rules)."""
        if isinstance(source, (str, Path)):
            data, name = read_rule_file(source), Path(source).name
        else:
            data, name = source, "rules"
        known = self._known()
        if not check_channels:
            known["channels"] = None
        parsed = parse_rules(data, source=name, **known)
        self._install(parsed)
        return parsed.rules

    def remove_rule(self, name: str) -> list[Alert]:
        """Remove a rule. Its firing alerts resolve (channels that heard of them are told at
        their groups' next look, as Alertmanager does when a rule stops sending an alert);
        its pending ones just go. Returns the resolutions."""
        with self._lock:
            state = self._rules.pop(name, None)
            if state is None:
                return []
            for metric, spec in state.watches:
                self.store.unwatch(metric, spec)
            now = self.clock()
            resolved = []
            for fingerprint, instance in list(state.instances.items()):
                if instance.state == "firing":
                    state.resolve(fingerprint, now, by="obskit", comment="rule removed")
                    resolved.append(self._transition(instance, now))
            state.instances.clear()
        self._publisher.publish(resolved)
        return resolved

    def rules(self) -> list[AlertRule]:
        return [state.rule for state in self._rules.values()]

    def add_slo(self, slo: SLO | Mapping[str, Any] | None = None, /, **fields: Any) -> SLO:
        """Add a service level objective: its burn-rate alert rules (see
        :mod:`obskit.alerts.slo`), and its compliance window for :meth:`slo_status`."""
        try:
            parsed = slo if isinstance(slo, SLO) else SLO.model_validate({**(slo or {}), **fields})
        except ValidationError as exc:
            lines = describe_errors("slo", str(fields.get("name", "")), None, exc, SLO)
            raise RuleError("\n".join(lines)) from None
        if parsed.name in self._slos:
            raise RuleError(f"slo {parsed.name!r}: an SLO with that name already exists")
        self._install(parse_rules(parsed.rules(), source=f"slo {parsed.name!r}", **self._known()))
        budget = parsed.budget_rule()
        state = RuleState(budget, self._spec(budget, budget.window_s), self.store)
        with self._lock:
            for metric, spec in state.watches:
                self.store.watch(metric, spec)
            self._slos[parsed.name] = (parsed, state)
        return parsed

    def slos(self) -> list[SLO]:
        return [slo for slo, _ in self._slos.values()]

    def slo_status(self, name: str) -> list[dict[str, Any]]:
        """Per label set of the SLO: the good ratio over its compliance window and the error
        budget remaining (1 untouched, 0 spent, negative overspent)."""
        if name not in self._slos:
            raise ConfigError(f"no SLO called {name!r} (known: {', '.join(self._slos) or 'none'})")
        slo, state = self._slos[name]
        values = state._values(state.spec, self.clock())
        return [slo.status(dict(key), ratio) for key, ratio in sorted(values.items())]

    def export_prometheus_rules(
        self,
        *,
        kinds: Mapping[str, str] | None = None,
        group: str = "obskit",
        strict: bool = False,
    ) -> Export:
        """This engine's rules (and SLOs) as a Prometheus rule file, and what was skipped
        (see :mod:`obskit.alerts.prometheus`); ``strict`` refuses any skipped rule.

        Metric kinds are the declared ones (``obskit.metrics``), never the traffic seen;
        ``kinds`` ({name: "counter" | "histogram" | "gauge" | "up_down_counter"}) adds or
        overrides some."""
        from obskit.alerts.prometheus import prometheus_rules

        export = prometheus_rules(
            self.rules(),
            metrics=declared_metrics(kinds),
            slos=self.slos(),
            group=group,
            interval_s=self.evaluation_interval_s,
        )
        return export.check_strict("Prometheus rules") if strict else export

    def export_alertmanager_config(self, *, strict: bool = False) -> Export:
        """This engine's routing as an Alertmanager configuration, and what could not move
        (see :mod:`obskit.alerts.alertmanager_config`); ``strict`` refuses any such item."""
        from obskit.alerts.alertmanager_config import alertmanager_config

        with self._lock:
            router = self.router
            export = alertmanager_config(
                rules=self.rules(),
                channels=dict(self.channels),
                default_channels=self.default_channels,
                inhibit_rules=list(router.inhibit_rules),
                policies=list(router.policies.values()),
                silences=list(router.silences.values()),
                group_wait_s=router.group_wait_s,
                group_interval_s=router.group_interval_s,
                repeat_interval_s=router.repeat_interval_s,
                now=self.clock(),
            )
        return export.check_strict("Alertmanager configuration") if strict else export

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
        missing = sorted(set(self.default_channels) - set(self.channels))
        if missing and any(not rule.channels for rule in parsed.rules):
            raise RuleError(
                f"default_channels name {', '.join(map(repr, missing))}, which no add_channel "
                "registered; add them before rules without channels"
            )
        with self._lock:
            for policy in parsed.escalation_policies:
                self.router.policies[policy.name] = policy
            self.router.inhibit_rules.extend(parsed.inhibit_rules)
            for rule in parsed.rules:
                short = None
                if rule.short_window_s is not None:
                    short = self._spec(rule, rule.short_window_s)
                state = RuleState(rule, self._spec(rule, rule.window_s), self.store, short)
                for metric, spec in state.watches:
                    self.store.watch(metric, spec)
                state.set_external_labels(self._external)
                self._rules[rule.name] = state
        if parsed.rules:
            self.start()

    def _spec(self, rule: AlertRule, window_s: float) -> WindowSpec:
        """The window's shape: buckets of ``resolution_s`` if the rule sets it, else of at
        most one evaluation interval (so the window slides as Prometheus' range does, within
        one evaluation), at least ``window_buckets`` and at most ``MAX_WINDOW_BUCKETS``."""
        if rule.resolution_s is not None and window_s == rule.window_s:
            size = round(window_s / rule.resolution_s)
        else:
            size = self.window_buckets
            step = self.window_resolution_s or self.evaluation_interval_s
            if step:
                size = max(size, min(MAX_WINDOW_BUCKETS, math.ceil(window_s / step - 1e-9)))
        if not rule.is_percentile:
            return WindowSpec(window_s / size, size)
        bounds: tuple[float, ...] = ()
        declared = declared_metrics().get(rule.metric)
        if declared is not None and declared.kind == "histogram":
            bounds = declared.bounds  # the same buckets Prometheus reads: the same answers
        if bounds:  # the store makes rings from either shape
            return cast(WindowSpec, BucketSpec(window_s / size, size, bounds))
        return WindowSpec(window_s / size, size, self.relative_accuracy)

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
        """The notifications due at ``now``, with their alerts' action outcomes and what else
        was going on (release, rising error groups, exemplar traces)."""
        notifications = self.router.tick(now)
        rules = {name: state.rule for name, state in self._rules.items()}
        for notification in notifications:
            self.actions.attach(notification)
            enrich(notification, rules, now)
        return notifications

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

    # -- operators: what is going on, and acting on it -----------------------------------------

    def active(self) -> list[Alert]:
        """Every pending and firing alert, as Alerts (``details["muted_by"]`` when muted)."""
        with self._lock:
            now = self.clock()
            return [self._snapshot(instance, now) for instance in self._instances()]

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
            self._history.add("silenced", now, **silence.to_dict())
        return silence

    def expire_silence(self, silence_id: str) -> None:
        """End a silence now."""
        with self._lock:
            silence = self.router.silences.get(silence_id)
            if silence is not None:
                silence.ends_at = min(silence.ends_at, self.clock())
                self._history.add("unsilenced", self.clock(), id=silence_id)

    def silences(self) -> list[Silence]:
        """Silences not yet over (active or starting later)."""
        now = self.clock()
        with self._lock:
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
            self.router.acknowledge(instance, now)
            taken = dataclasses.replace(self._snapshot(instance, now), state="acknowledged")
            self._history.alert("acknowledged", taken, now, by=by, comment=comment)
            notifications = self._tick(now)
        self._send(notifications)
        self._publisher.publish([taken])
        return taken

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
                instance = self._manual.instances.get(fingerprint)
                if instance is None:
                    return None
                self._manual.resolve(instance, now, by, comment)
            self.router.resolve_now(instance, now)
            resolved = self._transition(instance, now, route=False)
            self._history.amend_last(by=by, comment=comment)
            notifications = self._tick(now)
        self._send(notifications)
        self._publisher.publish([resolved])
        return resolved

    def _find(self, fingerprint: str) -> AlertInstance | None:
        for state in self._rules.values():
            instance = state.instances.get(fingerprint)
            if instance is not None:
                return instance
        return self._manual.instances.get(fingerprint)

    def _instances(self) -> list[AlertInstance]:
        """Every pending and firing instance: the rules', then those raised by hand."""
        out = [i for state in self._rules.values() for i in state.instances.values()]
        out.extend(self._manual.instances.values())
        return out

    # -- alerts raised by hand (see obskit.alerts.manual) --------------------------------------

    def trigger(
        self,
        name: str,
        /,
        *,
        severity: str = "warning",
        summary: str = "",
        labels: Mapping[str, Any] | None = None,
        annotations: Mapping[str, Any] | None = None,
        dedup_key: str | None = None,
        channels: Iterable[str] = (),
        group_by: Iterable[str] = ("alertname",),
        escalation: str | None = None,
        resolve_after_s: float | None = None,
    ) -> Alert:
        """Raise an alert by hand (or update the open one with this ``dedup_key``, or these
        labels); it is routed like a rule's alert. Mistakes raise ``ConfigError``."""
        for what, names in (("channels", channels), ("group_by", group_by)):
            if isinstance(names, str):
                raise ConfigError(f"trigger {name!r}: {what} is a list of names, e.g. [{names!r}]")
        channels, group_by = tuple(channels), tuple(group_by)
        self._check_routing_names(f"trigger {name!r}", channels, escalation)
        with self._lock:
            now = self.clock()
            self._refresh_identity()
            instance, change = self._manual.trigger(
                name,
                severity=severity,
                summary=summary,
                labels=labels,
                annotations=annotations,
                dedup_key=dedup_key,
                channels=channels,
                group_by=group_by,
                escalation=escalation,
                resolve_after_s=resolve_after_s,
                external_labels=self._external,
                now=now,
            )
            if change == "new":
                alert = self._transition(instance, now)
            else:
                if change == "rerouted":  # news for its (maybe new) groups
                    self.router.forget(instance.fingerprint)
                    self.router.update(
                        instance, channels or self.default_channels, now, fresh=False
                    )
                alert = self._snapshot(instance, now)
                self._history.alert("retriggered", alert, now)
            notifications = self._tick(now)
        self._send(notifications)
        if change == "new":
            self._publisher.publish([alert])
        self.start()  # group flushes and resolve_after_s need the evaluator
        return alert

    def resolve_manual(
        self,
        key: str,
        /,
        *,
        labels: Mapping[str, Any] | None = None,
        by: str = "",
        comment: str = "",
    ) -> list[Alert]:
        """Resolve the manual alert with dedup key (or fingerprint) ``key``, or every one
        named ``key`` (with ``labels`` among its labels); the resolutions."""
        with self._lock:
            now = self.clock()
            resolved = []
            for instance in self._manual.find(key, labels):
                self._manual.resolve(instance, now, by, comment)
                resolved.append(self._transition(instance, now))
            notifications = self._tick(now)
        self._send(notifications)
        self._publisher.publish(resolved)
        return resolved

    def _check_routing_names(
        self, what: str, channels: tuple[str, ...], escalation: str | None
    ) -> None:
        for name in channels:
            if name not in self.channels:
                known = ", ".join(sorted(self.channels)) or "none yet"
                raise ConfigError(
                    f"{what}: no channel called {name!r}; add_channel({name!r}, ...) first "
                    f"(known: {known})"
                )
        if escalation is not None and escalation not in self.router.policies:
            known = ", ".join(sorted(self.router.policies)) or "none yet"
            raise ConfigError(
                f"{what}: no escalation policy called {escalation!r} (known: {known})"
            )
        if not channels and set(self.default_channels) - set(self.channels):
            raise ConfigError(
                f"{what}: default_channels name channels no add_channel registered; add them"
            )

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The latest events (state changes, notifications, acknowledgements, silences)."""
        return self._history.events(limit)

    def stats(self) -> dict[str, Any]:
        """Counts and times: alerts fired by severity, mean time to acknowledge and to resolve
        (seconds, from firing), notifications per channel, series and guard counters."""
        with self._lock:
            return {
                "rules": len(self._rules),
                "active": len(self._instances()),
                **self._history.summary(),
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
