"""Notification routing, as Alertmanager's dispatcher and notification pipeline do it.

Firing alerts are put in **groups**: one per channel and per value of the rule's ``group_by``
labels. A new group waits ``group_wait_s`` before its first notification (so alerts that start
together arrive together), then is looked at every ``group_interval_s``. At each look
(a *flush*), muted alerts (silenced or inhibited) are left out and the rest is compared with
what this channel was last told about this group (the notification log):

* nothing told yet: notify if anything fires ("first");
* an alert fires that was not in the last notification: notify ("new_alerts");
* nothing fires any more but something did: notify ("resolved");
* an alert resolved since, and the channel wants resolutions: notify ("resolved");
* otherwise, notify again only once ``repeat_interval_s`` has passed ("repeat"; never for a
  group whose firing alerts were all acknowledged).

Identical notifications are thus never sent twice within ``repeat_interval_s``. Resolved alerts
leave the group after a flush; an empty group is deleted. Time is whatever ``now`` the engine
passes (its clock), so routing is exact under a test clock: a flush happens at the first
``tick`` at or after its due time.

Escalation and acknowledgement notify single alerts directly, outside groups.

A channel with a ``resend_interval_s`` (:class:`~obskit.alerts.AlertmanagerChannel`) does its
own grouping, dedup and repeat, as Alertmanager does for Prometheus: it is not grouped here but
told of every alert that starts firing or resolves at the evaluation where it happens, and of
every firing alert again each ``resend_interval_s``, each time with ``expires_at`` four resend
intervals (or evaluation intervals, if longer) ahead, as Prometheus sets ``endsAt``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from obskit.alerts.notify import Notification
from obskit.alerts.policies import EscalationLevel, EscalationPolicy, InhibitRule, Silence
from obskit.alerts.state import AlertInstance
from obskit.diagnostics import ConfigError
from obskit.signals import Alert

__all__ = ["AlertGroup", "LogEntry", "Router", "check_routing", "needs_update"]

Snapshot = Callable[[AlertInstance, float], Alert]


@dataclass(slots=True)
class LogEntry:
    """What a channel was last told about a group (Alertmanager's notification log entry)."""

    firing: frozenset[str]
    resolved: frozenset[str]
    timestamp: float


@dataclass(slots=True)
class AlertGroup:
    key: str
    channel: str
    labels: dict[str, str]
    next_flush: float
    alerts: dict[str, AlertInstance] = field(default_factory=dict)
    entry: LogEntry | None = None


@dataclass(slots=True)
class _Pushed:
    """A firing alert a pushing channel was told of, and when."""

    instance: AlertInstance
    sent_at: float | None = None


@dataclass(slots=True)
class _Escalation:
    instance: AlertInstance
    policy: EscalationPolicy
    since: float  # level delays count from here (a recurrence moves it back: all are due)
    why: str = "unacknowledged"
    level: int = 0


def needs_update(
    entry: LogEntry | None,
    firing: frozenset[str],
    resolved: frozenset[str],
    *,
    send_resolved: bool,
    repeat_interval_s: float,
    now: float,
) -> str | None:
    """Why this flush must notify (Alertmanager's ``DedupStage.needsUpdate``), or ``None``.

    >>> needs_update(None, frozenset({"a"}), frozenset(), send_resolved=True,
    ...              repeat_interval_s=60, now=0)
    'first'
    >>> told = LogEntry(frozenset({"a"}), frozenset(), timestamp=0)
    >>> needs_update(told, frozenset({"a"}), frozenset(), send_resolved=True,
    ...              repeat_interval_s=60, now=30) is None
    True
    >>> needs_update(told, frozenset({"a", "b"}), frozenset(), send_resolved=True,
    ...              repeat_interval_s=60, now=30)
    'new_alerts'
    """
    if entry is None:
        return "first" if firing else None
    if not firing <= entry.firing:
        return "first" if not entry.firing else "new_alerts"
    if not firing:
        return "resolved" if entry.firing else None
    if send_resolved and not resolved <= entry.resolved:
        return "resolved"
    if now - entry.timestamp >= repeat_interval_s:
        return "repeat"
    return None


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


class Router:
    """Groups, silences, inhibition, escalation and acknowledgement of one engine's alerts."""

    def __init__(
        self,
        *,
        group_wait_s: float,
        group_interval_s: float,
        repeat_interval_s: float,
        snapshot: Snapshot,
        sends_resolved: Callable[[str], bool],
        resend_interval: Callable[[str], float | None] = lambda name: None,
        evaluation_interval_s: float | None = None,
    ) -> None:
        self.group_wait_s = group_wait_s
        self.group_interval_s = group_interval_s
        self.repeat_interval_s = repeat_interval_s
        self.snapshot = snapshot
        self.sends_resolved = sends_resolved
        self.resend_interval = resend_interval
        self.evaluation_interval_s = evaluation_interval_s
        #: pushing channel -> fingerprint -> firing alert it hears of every resend interval
        self.pushed: dict[str, dict[str, _Pushed]] = {}
        self._resolved_pushes: dict[str, list[AlertInstance]] = {}
        self.groups: dict[str, AlertGroup] = {}
        self.silences: dict[str, Silence] = {}
        self.inhibit_rules: list[InhibitRule] = []
        self.policies: dict[str, EscalationPolicy] = {}
        self.firing: dict[str, AlertInstance] = {}
        self.notified: dict[str, set[str]] = {}  # fingerprint -> channels told it fires
        self._escalations: dict[str, _Escalation] = {}
        #: fingerprint -> the last times it started firing (for recurrence escalation)
        self.starts: dict[str, list[float]] = {}
        self._direct: list[Notification] = []

    # -- input: state changes ------------------------------------------------------------------

    def update(
        self, instance: AlertInstance, channels: Sequence[str], now: float, *, fresh: bool = True
    ) -> None:
        """Take a firing or resolved instance into its groups (pending ones are not routed).

        ``fresh=False``: an alert already firing was updated (its escalation goes on)."""
        fingerprint = instance.fingerprint
        if instance.state == "firing":
            self.firing[fingerprint] = instance
            policy_name = instance.rule.escalation
            if fresh and policy_name is not None and policy_name in self.policies:
                self._escalations[fingerprint] = self._escalation(
                    instance, self.policies[policy_name], now
                )
        elif instance.state == "resolved":
            if self.firing.get(fingerprint) is instance:
                del self.firing[fingerprint]
            self._escalations.pop(fingerprint, None)
            told = self.notified.pop(fingerprint, set())
            for channel in sorted(told - set(channels)):  # told by escalation: tell directly
                if self.sends_resolved(channel):
                    self._direct.append(self._single(channel, "resolved", instance, now))
        else:
            return
        for channel in channels:
            if self.resend_interval(channel) is not None:
                self._push(instance, channel)
                continue
            key, labels = self._group_key(instance, channel)
            group = self.groups.get(key)
            if group is None:
                if instance.state != "firing":
                    continue
                group = AlertGroup(key, channel, labels, now + self.group_wait_s)
                self.groups[key] = group
            group.alerts[fingerprint] = instance

    def _push(self, instance: AlertInstance, channel: str) -> None:
        pushed = self.pushed.setdefault(channel, {})
        if instance.state == "firing":
            pushed[instance.fingerprint] = _Pushed(instance)
        elif pushed.pop(instance.fingerprint, None) is not None:
            self._resolved_pushes.setdefault(channel, []).append(instance)

    def resolve_now(self, instance: AlertInstance, now: float) -> None:
        """A resolution by hand: tell every channel that heard of it now, not at a flush.

        The alert leaves its groups and their notification logs, so that if it fires again
        it is news again.
        """
        fingerprint = instance.fingerprint
        if self.firing.get(fingerprint) is instance:
            del self.firing[fingerprint]
        self._escalations.pop(fingerprint, None)
        for channel, pushed in self.pushed.items():
            if pushed.pop(fingerprint, None) is not None:
                self.notified.setdefault(fingerprint, set()).add(channel)
        for channel in sorted(self.notified.pop(fingerprint, set())):
            if self.sends_resolved(channel):
                self._direct.append(self._single(channel, "resolved", instance, now))
        self._leave_groups(fingerprint)

    def forget(self, fingerprint: str) -> None:
        """Take an alert out of its groups and push lists without telling anyone, so that its
        next update is news (a manual alert whose labels or severity changed)."""
        self._leave_groups(fingerprint)
        for pushed in self.pushed.values():
            pushed.pop(fingerprint, None)

    def _leave_groups(self, fingerprint: str) -> None:
        """Out of every group and its notification log (empty groups go)."""
        for key, group in list(self.groups.items()):
            if group.alerts.pop(fingerprint, None) is None:
                continue
            if group.entry is not None:
                group.entry.firing = group.entry.firing - {fingerprint}
            if not group.alerts:
                del self.groups[key]

    def acknowledge(self, instance: AlertInstance, now: float) -> None:
        """Stop escalating ``instance`` and tell every channel that heard of it."""
        self._escalations.pop(instance.fingerprint, None)
        for channel in sorted(self.notified.get(instance.fingerprint, ())):
            self._direct.append(self._single(channel, "acknowledged", instance, now))

    # -- output: what to send now --------------------------------------------------------------

    def tick(self, now: float) -> list[Notification]:
        """Notifications due at ``now``: direct ones, escalations, then group flushes."""
        out, self._direct = self._direct, []
        out.extend(self._escalate(now))
        out.extend(self._pushes(now))
        for group in list(self.groups.values()):
            if now >= group.next_flush:
                out.extend(self._flush(group, now))
        return out

    def next_due(self) -> float | None:
        """The earliest time a group flush is due (``None`` without groups)."""
        return min((g.next_flush for g in self.groups.values()), default=None)

    def muted_by(self, labels: dict[str, str], now: float) -> str | None:
        """``"silence <id>"`` or ``"inhibition"`` when notifications of ``labels`` are muted."""
        for silence in self.silences.values():
            if silence.is_active(now) and silence.matches(labels):
                return f"silence {silence.id}"
        if self.inhibit_rules:
            sources = [i.labels for i in self.firing.values() if i.labels is not labels]
            for rule in self.inhibit_rules:
                if rule.mutes(labels, sources):
                    return "inhibition"
        return None

    def _flush(self, group: AlertGroup, now: float) -> list[Notification]:
        group.next_flush = now + self.group_interval_s
        shown = [a for a in group.alerts.values() if self.muted_by(a.labels, now) is None]
        firing = frozenset(a.fingerprint for a in shown if a.state == "firing")
        resolved = frozenset(a.fingerprint for a in shown if a.state == "resolved")
        send_resolved = self.sends_resolved(group.channel)
        reason = needs_update(
            group.entry,
            firing,
            resolved,
            send_resolved=send_resolved,
            repeat_interval_s=self.repeat_interval_s,
            now=now,
        )
        if reason == "repeat" and all(group.alerts[f].acknowledged_at is not None for f in firing):
            reason = None
        out: list[Notification] = []
        if reason is not None:
            group.entry = LogEntry(firing, resolved, now)
            told = [a for a in shown if a.state == "firing" or send_resolved]
            if told:
                alerts = [self.snapshot(a, now) for a in told]
                out.append(
                    Notification(group.channel, reason, alerts, group.key, group.labels, now)
                )
            for fingerprint in firing:
                self.notified.setdefault(fingerprint, set()).add(group.channel)
        for fingerprint in [f for f, a in group.alerts.items() if a.state == "resolved"]:
            del group.alerts[fingerprint]
        if not group.alerts:
            del self.groups[group.key]
        return out

    def _pushes(self, now: float) -> list[Notification]:
        """For each pushing channel, one notification: what changed, and what is due again."""
        out: list[Notification] = []
        for channel in sorted(set(self.pushed) | set(self._resolved_pushes)):
            interval = self.resend_interval(channel) or 0.0
            resolved = self._resolved_pushes.pop(channel, [])
            due = [
                track
                for track in self.pushed.get(channel, {}).values()
                if track.sent_at is None or now - track.sent_at >= interval
            ]
            if not due and not resolved:
                continue
            changed = bool(resolved) or any(track.sent_at is None for track in due)
            for track in due:
                track.sent_at = now
            alerts = [self.snapshot(t.instance, now) for t in due]
            if self.sends_resolved(channel):
                alerts.extend(self.snapshot(instance, now) for instance in resolved)
            if not alerts:
                continue
            ahead = 4 * max(interval, self.evaluation_interval_s or 0.0)
            notification = Notification(
                channel, "update" if changed else "resend", alerts, timestamp=now
            )
            notification.expires_at = now + ahead
            out.append(notification)
        return out

    def _escalation(
        self, instance: AlertInstance, policy: EscalationPolicy, now: float
    ) -> _Escalation:
        """The escalation of an alert that starts firing: from when it fired, or, when it
        recurs ``recurrence_count`` times within ``recurrence_window_s``, every level now."""
        since = instance.fired_at if instance.fired_at is not None else now
        if policy.recurrence_count is None or policy.recurrence_window_s is None:
            return _Escalation(instance, policy, since)
        window = policy.recurrence_window_s
        starts = [t for t in self.starts.get(instance.fingerprint, ()) if now - t < window]
        starts.append(now)
        self.starts[instance.fingerprint] = starts[-policy.recurrence_count :]
        if len(starts) < policy.recurrence_count:
            return _Escalation(instance, policy, since)
        why = f"fired {len(starts)} times within {window:g} s"
        return _Escalation(instance, policy, now - policy.last_delay_s, why)

    def forget_recurrences(self, now: float) -> None:
        """Drop start times too old to count for any policy's recurrence window."""
        longest = max((p.recurrence_window_s or 0.0 for p in self.policies.values()), default=0)
        self.starts = {f: t for f, t in self.starts.items() if t and now - t[-1] < longest}

    def _escalate(self, now: float) -> list[Notification]:
        out: list[Notification] = []
        for fingerprint, track in list(self._escalations.items()):
            instance = track.instance
            if instance.state != "firing" or instance.acknowledged_at is not None:
                del self._escalations[fingerprint]
                continue
            if self.muted_by(instance.labels, now) is not None:
                continue
            levels = track.policy.levels
            while track.level < len(levels) and now >= track.since + levels[track.level].after_s:
                out.extend(self._apply(levels[track.level], track, now))
                track.level += 1
            if track.level == len(levels):
                del self._escalations[fingerprint]
        return out

    def _apply(self, level: EscalationLevel, track: _Escalation, now: float) -> list[Notification]:
        """One level: raise the severity, then tell its channels (or those already told)."""
        instance = track.instance
        fingerprint = instance.fingerprint
        if level.raise_severity is not None:
            instance.severity = level.raise_severity
            instance.labels["severity"] = level.raise_severity
        elapsed = now - track.since
        instance.escalated = f"level {track.level + 1}: " + (
            track.why if track.why != "unacknowledged" else f"unacknowledged for {elapsed:g} s"
        )
        channels = level.channels or tuple(sorted(self.notified.get(fingerprint, ())))
        for channel in channels:
            self.notified.setdefault(fingerprint, set()).add(channel)
        return [self._single(channel, "escalation", instance, now) for channel in channels]

    def _single(
        self, channel: str, reason: str, instance: AlertInstance, now: float
    ) -> Notification:
        labels = {"alertname": instance.rule.name}
        key = f"{channel}:{instance.fingerprint}"
        return Notification(channel, reason, [self.snapshot(instance, now)], key, labels, now)

    def _group_key(self, instance: AlertInstance, channel: str) -> tuple[str, dict[str, str]]:
        group_by = instance.rule.group_by
        if "..." in group_by:
            labels = dict(instance.labels)
        else:
            labels = {name: instance.labels.get(name, "") for name in group_by}
        body = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        return f"{channel}:{{{body}}}", labels
