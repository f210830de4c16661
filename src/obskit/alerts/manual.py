"""Alerts raised by hand: ``trigger`` and ``resolve_manual``.

Code that knows something is wrong (a payment provider answering garbage, a queue that will
not drain) raises an alert itself. A manual alert is an alert instance like a rule's: it is
labelled ``alertname`` (its name) and ``severity`` plus its own labels and the engine's
external labels; it is routed, grouped, silenced, inhibited, escalated, acknowledged and
recorded in the history exactly as a rule's alert is. It fires at once (there is no condition
to hold ``for`` a while) and stays firing until it is resolved.

Its identity follows the two anchors:

* with a ``dedup_key`` (PagerDuty Events API v2): the key is the alert. Triggering the same
  key again updates the open alert (summary, severity, labels) instead of opening another;
  ``resolve_manual(key)`` closes it. A severity or label change is news: channels hear it
  at the group's next flush, as a new alert.
* without one (Alertmanager): the label set is the alert; triggering the same name, severity
  and labels again updates it. Its fingerprint is its dedup key (``details["dedup_key"]``).

``resolve_manual(name)`` resolves every open manual alert of that name (those whose labels
include ``labels``, when given). A resolution reaches channels as a rule's does, at its
group's next flush. ``resolve_after_s`` resolves an alert not triggered again within that
time, as Alertmanager's ``resolve_timeout`` does for alerts without an end.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from obskit.alerts.rules import ManualRule, Severity
from obskit.alerts.state import AlertInstance, fingerprint_of
from obskit.diagnostics import ConfigError, require_number

__all__ = ["ManualAlerts"]

SEVERITIES: tuple[str, ...] = Severity.__args__  # type: ignore[attr-defined]


class ManualAlerts:
    """The open manual alerts of one engine (the engine's lock guards them)."""

    def __init__(self) -> None:
        self.instances: dict[str, AlertInstance] = {}
        self._expires: dict[str, float] = {}

    def trigger(
        self,
        name: str,
        *,
        severity: str,
        summary: str,
        labels: Mapping[str, Any] | None,
        annotations: Mapping[str, Any] | None,
        dedup_key: str | None,
        channels: tuple[str, ...],
        group_by: tuple[str, ...],
        escalation: str | None,
        resolve_after_s: float | None,
        external_labels: Mapping[str, str],
        now: float,
    ) -> tuple[AlertInstance, str]:
        """Open or update the alert; the instance and what happened: ``"new"``, ``"updated"``
        (same routing) or ``"rerouted"`` (its labels or severity changed)."""
        own = check(name, severity, labels, dedup_key, group_by, resolve_after_s)
        alert_labels = {**external_labels, **own, "alertname": name, "severity": severity}
        if dedup_key is not None:
            fingerprint = fingerprint_of({"dedup_key": dedup_key})
        else:
            fingerprint = fingerprint_of(alert_labels)
        rule = ManualRule(name, severity, dedup_key or fingerprint, group_by, channels, escalation)
        notes = {str(k): str(v) for k, v in (annotations or {}).items()}
        if summary:
            notes["summary"] = str(summary)
        instance = self.instances.get(fingerprint)
        if instance is None:
            instance = AlertInstance(
                rule, fingerprint, alert_labels, "firing", now, annotations=notes, fired_at=now
            )
            self.instances[fingerprint] = instance
            change = "new"
        else:
            if instance.severity is not None:  # raised by escalation: it stays raised
                alert_labels["severity"] = instance.severity
            rerouted = instance.labels != alert_labels or instance.rule != rule
            instance.rule, instance.labels, instance.annotations = rule, alert_labels, notes
            change = "rerouted" if rerouted else "updated"
        instance.last_evaluated = now
        if resolve_after_s is None:
            self._expires.pop(fingerprint, None)
        else:
            self._expires[fingerprint] = now + resolve_after_s
        return instance, change

    def find(self, key: str, labels: Mapping[str, Any] | None = None) -> list[AlertInstance]:
        """The open alerts ``key`` names: its dedup key, fingerprint, or name (with ``labels``
        among its labels)."""
        for fingerprint in (fingerprint_of({"dedup_key": key}), key):
            instance = self.instances.get(fingerprint)
            if instance is not None:
                return [instance]
        wanted = {str(k): str(v) for k, v in (labels or {}).items()}
        return [
            instance
            for instance in self.instances.values()
            if instance.rule.name == key
            and all(instance.labels.get(k) == v for k, v in wanted.items())
        ]

    def resolve(self, instance: AlertInstance, now: float, by: str = "", comment: str = "") -> None:
        """Close ``instance`` (resolved at ``now``, by whom and why)."""
        instance.state = "resolved"
        instance.resolved_at = now
        instance.resolved_by, instance.resolved_comment = by, comment
        self.instances.pop(instance.fingerprint, None)
        self._expires.pop(instance.fingerprint, None)

    def expired(self, now: float) -> list[AlertInstance]:
        """Open alerts whose ``resolve_after_s`` has passed at ``now``."""
        return [
            self.instances[fingerprint]
            for fingerprint, at in self._expires.items()
            if now >= at and fingerprint in self.instances
        ]


def check(
    name: Any,
    severity: Any,
    labels: Mapping[str, Any] | None,
    dedup_key: Any,
    group_by: Collection[str],
    resolve_after_s: Any,
) -> dict[str, str]:
    """Refuse a trigger that cannot mean what it says; its own labels as strings."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"trigger: the alert needs a name (a non-empty string), not {name!r}")
    if severity not in SEVERITIES:
        raise ConfigError(
            f"trigger {name!r}: severity must be one of {', '.join(SEVERITIES)}, not {severity!r}"
        )
    if dedup_key is not None and (not isinstance(dedup_key, str) or not dedup_key):
        raise ConfigError(
            f"trigger {name!r}: dedup_key must be a non-empty string (or None: the labels "
            f"identify the alert), not {dedup_key!r}"
        )
    if labels is not None and not isinstance(labels, Mapping):
        raise ConfigError(f"trigger {name!r}: labels must be a mapping of names to values")
    own = {str(k): str(v) for k, v in (labels or {}).items()}
    for reserved, field in (("alertname", "name"), ("severity", "severity")):
        if reserved in own:
            raise ConfigError(f"trigger {name!r}: label {reserved!r} is set by {field}=; use that")
    if isinstance(group_by, str) or not all(isinstance(g, str) and g for g in group_by):
        raise ConfigError(
            f"trigger {name!r}: group_by is a list of label names, e.g. ['alertname'], "
            f"not {group_by!r}"
        )
    if resolve_after_s is not None:
        require_number(f"trigger {name!r}", "resolve_after_s", resolve_after_s)
    return own
