"""obskit's routing as an Alertmanager configuration (``alertmanager.yml``).

What moves, and how:

* the engine's ``group_wait_s``, ``group_interval_s``, ``repeat_interval_s`` -> the root route;
  alerts no channel hears (rules without channels) go to the root receiver ``obskit-none``,
  which has no integration, as they reach only obskit's pipeline and log here;
* each rule and each of its channels -> a child route matching ``alertname`` with the rule's
  ``group_by`` and ``continue: true`` (an alert goes to every channel of its rule); a route to
  PagerDuty and Opsgenie group by every label (``...``), since :class:`PagerDutyChannel` and
  :class:`OpsgenieChannel` make one incident per alert;
* channels -> receivers: :class:`WebhookChannel` -> ``webhook_configs`` (a ``Bearer``
  ``Authorization`` header -> ``http_config.authorization``), :class:`SlackChannel` ->
  ``slack_configs``, :class:`PagerDutyChannel` -> ``pagerduty_configs`` (Events API v2),
  :class:`EmailChannel` -> ``email_configs``, :class:`OpsgenieChannel` -> ``opsgenie_configs``
  (key, region, responders, tags, the severity-to-priority map as a template);
  ``send_resolved`` carried over;
* inhibit rules -> ``inhibit_rules``; silences not yet over -> ``time_intervals`` (UTC, to the
  minute) muting child routes that carry the silence's matchers.

What has no Alertmanager equivalent is skipped and named in the report: escalation policies,
log channels, a webhook's HMAC signature and other headers, SMS (Alertmanager has no Twilio
receiver), Teams (``msteamsv2_configs`` needs Alertmanager 0.28), channels of other kinds.
Acknowledgement has none either (a note says so). The file holds the receivers' secrets (Slack
URL, PagerDuty and Opsgenie keys, SMTP password): keep it as private as they are.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from obskit.alerts.alertmanager import AlertmanagerChannel
from obskit.alerts.channels import (
    PAGERDUTY_EVENTS_URL,
    EmailChannel,
    LogChannel,
    PagerDutyChannel,
    SlackChannel,
    WebhookChannel,
)
from obskit.alerts.export import Export, yaml_text
from obskit.alerts.matchers import Matcher
from obskit.alerts.notify import Channel
from obskit.alerts.opsgenie import OPSGENIE_URLS, OpsgenieChannel
from obskit.alerts.policies import EscalationPolicy, InhibitRule, Silence
from obskit.alerts.prometheus import prometheus_duration
from obskit.alerts.rules import AlertRule
from obskit.alerts.teams import TeamsChannel
from obskit.alerts.twilio import TwilioSMSChannel
from obskit.metrics import label_name

__all__ = ["NO_RECEIVER", "alertmanager_config"]

#: The receiver of alerts that no channel hears (it has no integration).
NO_RECEIVER = "obskit-none"
_SEVERITY = "{{ if .CommonLabels.severity }}{{ .CommonLabels.severity }}{{ else }}error{{ end }}"


def alertmanager_config(
    *,
    rules: Iterable[AlertRule],
    channels: Mapping[str, Channel],
    default_channels: Sequence[str] = (),
    inhibit_rules: Iterable[InhibitRule] = (),
    policies: Iterable[EscalationPolicy] = (),
    silences: Iterable[Silence] = (),
    group_wait_s: float = 30.0,
    group_interval_s: float = 300.0,
    repeat_interval_s: float = 4 * 3600.0,
    now: float = 0.0,
) -> Export:
    """An Alertmanager configuration routing as obskit does, and what could not move."""
    skipped: list[tuple[str, str]] = []
    receivers: list[dict[str, Any]] = [{"name": NO_RECEIVER}]
    usable: set[str] = set()
    for name, channel in channels.items():
        receiver = _receiver(name, channel, skipped)
        if receiver is not None:
            receivers.append(receiver)
            usable.add(name)
    intervals, muting = _silences(silences, now)
    routes = []
    for rule in rules:
        for name in rule.channels or tuple(default_channels):
            if name not in usable:
                continue
            routes.append(_route(rule, name, channels[name], muting))
    for policy in policies:
        skipped.append(
            (
                f"escalation policy {policy.name!r}",
                "Alertmanager has no escalation; route to PagerDuty (or a similar tool) and use "
                "its escalation policies",
            )
        )
    config: dict[str, Any] = {
        "route": {
            "receiver": NO_RECEIVER,
            "group_by": ["alertname"],
            "group_wait": prometheus_duration(group_wait_s),
            "group_interval": prometheus_duration(group_interval_s),
            "repeat_interval": prometheus_duration(repeat_interval_s),
            "routes": routes,
        },
        "receivers": receivers,
    }
    inhibits = [_inhibit_rule(rule) for rule in inhibit_rules]
    if inhibits:
        config["inhibit_rules"] = inhibits
    if intervals:
        config["time_intervals"] = intervals
    notes = [
        "acknowledgement has no Alertmanager equivalent: acknowledge in the paging tool, or "
        "silence with amtool silence add"
    ]
    return Export(yaml_text(config), skipped, notes)


def _receiver(name: str, channel: Channel, skipped: list[tuple[str, str]]) -> dict[str, Any] | None:
    resolved = bool(getattr(channel, "send_resolved", True))
    what = f"channel {name!r} ({type(channel).__name__})"
    if isinstance(channel, AlertmanagerChannel):
        skipped.append((what, "it is the Alertmanager itself, not one of its receivers"))
        return None
    if isinstance(channel, WebhookChannel):
        config: dict[str, Any] = {"url": channel.url, "send_resolved": resolved}
        if channel.max_alerts:
            config["max_alerts"] = channel.max_alerts
        for header, value in channel.headers.items():
            kind, _, credentials = value.partition(" ")
            if header.lower() == "authorization" and credentials:
                config["http_config"] = {
                    "authorization": {"type": kind, "credentials": credentials}
                }
            else:
                skipped.append(
                    (f"{what} header {header!r}", "webhook_configs send no custom headers")
                )
        if channel.signs:
            skipped.append((f"{what} hmac_secret", "Alertmanager does not sign webhooks"))
        return {"name": name, "webhook_configs": [config]}
    if isinstance(channel, SlackChannel):
        config = {"api_url": channel.webhook_url, "send_resolved": resolved}
        if channel.username:
            config["username"] = channel.username
        if channel.icon_emoji:
            config["icon_emoji"] = channel.icon_emoji
        return {"name": name, "slack_configs": [config]}
    if isinstance(channel, PagerDutyChannel):
        config = {
            "routing_key": channel.routing_key,
            "send_resolved": resolved,
            "severity": _SEVERITY,
        }
        if channel.url != PAGERDUTY_EVENTS_URL:
            config["url"] = channel.url
        return {"name": name, "pagerduty_configs": [config]}
    if isinstance(channel, EmailChannel):
        config = {
            "to": ", ".join(channel.recipients),
            "from": channel.sender,
            "smarthost": f"{channel.host}:{channel.port}",
            "require_tls": channel.starttls,
            "send_resolved": resolved,
        }
        if channel.username is not None:
            config["auth_username"] = channel.username
            config["auth_password"] = channel.password or ""
        return {"name": name, "email_configs": [config]}
    if isinstance(channel, OpsgenieChannel):
        return {"name": name, "opsgenie_configs": [_opsgenie(channel, resolved)]}
    if isinstance(channel, LogChannel):
        skipped.append((what, "Alertmanager has no log receiver; obskit's log keeps alerts"))
    elif isinstance(channel, TwilioSMSChannel):
        skipped.append((what, "Alertmanager has no SMS receiver (route SMS through Opsgenie)"))
    elif isinstance(channel, TeamsChannel):
        skipped.append((what, "msteamsv2_configs needs Alertmanager 0.28; add it by hand there"))
    else:
        skipped.append((what, "no Alertmanager receiver for this kind of channel"))
    return None


def _opsgenie(channel: OpsgenieChannel, resolved: bool) -> dict[str, Any]:
    config: dict[str, Any] = {
        "api_key": channel.api_key,
        "send_resolved": resolved,
        "source": channel.source,
        "priority": _priority_template(channel.priorities),
    }
    if channel.url != OPSGENIE_URLS["us"]:
        config["api_url"] = channel.url + "/"
    if channel.responders:
        config["responders"] = channel.responders
    if channel.tags:
        config["tags"] = ",".join(channel.tags)
    return config


def _priority_template(priorities: Mapping[str, str]) -> str:
    """Alertmanager template choosing the priority from the group's common severity."""
    branches = [
        f"{'else if' if index else 'if'} eq .CommonLabels.severity {json.dumps(severity)} }}}}"
        + priority
        for index, (severity, priority) in enumerate(priorities.items())
    ]
    return "{{ " + "{{ ".join(branches) + "{{ else }}P3{{ end }}"


def _route(
    rule: AlertRule, name: str, channel: Channel, muting: list[tuple[str, tuple[Matcher, ...]]]
) -> dict[str, Any]:
    if isinstance(channel, (PagerDutyChannel, OpsgenieChannel)):
        group_by = ["..."]
    else:
        group_by = [g if g == "..." else label_name(g) for g in rule.group_by]
    route: dict[str, Any] = {
        "receiver": name,
        "matchers": [f'alertname="{rule.name}"'],
        "group_by": group_by,
        "continue": True,
    }
    children = [
        {"matchers": [_matcher(m) for m in matchers], "mute_time_intervals": [interval]}
        for interval, matchers in muting
        if _may_match(matchers, rule.name)
    ]
    if children:
        route["routes"] = children
    return route


def _may_match(matchers: tuple[Matcher, ...], alertname: str) -> bool:
    return all(m.matches({"alertname": alertname}) for m in matchers if m.name == "alertname")


def _matcher(matcher: Matcher) -> str:
    return str(Matcher(label_name(matcher.name), matcher.op, matcher.value))


def _inhibit_rule(rule: InhibitRule) -> dict[str, Any]:
    out: dict[str, Any] = {
        "source_matchers": [_matcher(m) for m in rule.source_matchers],
        "target_matchers": [_matcher(m) for m in rule.target_matchers],
    }
    if rule.equal:
        out["equal"] = [label_name(name) for name in rule.equal]
    return out


def _silences(
    silences: Iterable[Silence], now: float
) -> tuple[list[dict[str, Any]], list[tuple[str, tuple[Matcher, ...]]]]:
    intervals, muting = [], []
    for silence in silences:
        if silence.ends_at <= now:
            continue
        name = f"silence-{silence.id}"
        intervals.append({"name": name, "time_intervals": _time_ranges(silence)})
        muting.append((name, silence.matchers))
    return intervals, muting


def _time_ranges(silence: Silence) -> list[dict[str, Any]]:
    """The silence's span as Alertmanager time intervals, one per UTC day it touches."""
    start = dt.datetime.fromtimestamp(silence.starts_at, dt.timezone.utc).replace(
        second=0, microsecond=0
    )
    end = dt.datetime.fromtimestamp(silence.ends_at, dt.timezone.utc)
    if end.second or end.microsecond:
        end = end.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    out: list[dict[str, Any]] = []
    day = start.replace(hour=0, minute=0)
    while day < end:
        following = day + dt.timedelta(days=1)
        first, last = max(start, day), min(end, following)
        entry: dict[str, Any] = {
            "years": [str(day.year)],
            "months": [day.strftime("%B").lower()],
            "days_of_month": [str(day.day)],
        }
        if (first, last) != (day, following):
            closing = "24:00" if last == following else last.strftime("%H:%M")
            entry["times"] = [{"start_time": first.strftime("%H:%M"), "end_time": closing}]
        out.append(entry)
        day = following
    return out
