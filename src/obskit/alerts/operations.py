"""Acting on an engine's live alerts: what is going on (``active``, ``history``, ``stats``),
silences, acknowledgement and resolution by hand, and alerts raised by hand (``trigger``,
``resolve_manual``; see :mod:`~obskit.alerts.manual`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from obskit.alerts._parts import EngineParts
from obskit.alerts.policies import Silence
from obskit.alerts.state import AlertInstance
from obskit.diagnostics import ConfigError
from obskit.signals import Alert

__all__ = ["EngineOperations"]


class EngineOperations(EngineParts):
    """The engine's operator methods (see :class:`~obskit.alerts.engine.AlertEngine`)."""

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
        (seconds, from firing), action outcomes by status, notifications per channel, series
        and guard counters."""
        with self._lock:
            return {
                "rules": len(self._rules),
                "active": len(self._instances()),
                **self._history.summary(),
                "actions": dict(self.actions.outcomes),
                "notifications": {
                    name: dataclasses.asdict(stats) for name, stats in self.dispatcher.stats.items()
                },
                "store": self.store.stats(),
            }
