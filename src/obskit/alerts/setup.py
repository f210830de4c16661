"""Setting an engine up: channels, rules (from Python or files), SLOs, inhibit rules,
escalation policies, and their export to Prometheus and Alertmanager.

Every mistake raises :class:`~obskit.alerts.rules.RuleError` (a ``ConfigError``) listing each
problem, and nothing is installed unless everything is valid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from obskit.alerts._parts import EngineParts
from obskit.alerts.declared import declared_metrics
from obskit.alerts.export import Export
from obskit.alerts.loading import RuleSet, describe_errors, parse_rules, read_rule_file
from obskit.alerts.notify import Channel
from obskit.alerts.policies import EscalationPolicy, InhibitRule
from obskit.alerts.rules import AlertRule, RuleError
from obskit.alerts.slo import SLO
from obskit.alerts.state import RuleState
from obskit.alerts.store import WindowSpec
from obskit.alerts.window import BucketSpec
from obskit.diagnostics import ConfigError
from obskit.signals import Alert

__all__ = ["MAX_WINDOW_BUCKETS", "EngineSetup"]

#: The most buckets a window gets by default (a 6 h window at 15 s evaluations slides by 60 s).
MAX_WINDOW_BUCKETS = 360


class EngineSetup(EngineParts):
    """The engine's configuration methods (see :class:`~obskit.alerts.engine.AlertEngine`)."""

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
        """Add every rule (and channel, inhibit rule, escalation policy) of a file or data; all
        or none.

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
            "existing_channels": self.channels,
            "existing_rules": self._rules,
            "existing_policies": self.router.policies,
        }

    def _install(self, parsed: RuleSet) -> None:
        missing = sorted(set(self.default_channels) - set(self.channels) - set(parsed.channels))
        if missing and any(not rule.channels for rule in parsed.rules):
            raise RuleError(
                f"default_channels name {', '.join(map(repr, missing))}, which no add_channel "
                "registered; add them before rules without channels"
            )
        self.channels.update(parsed.channels)  # validated with the rules: all or nothing
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
