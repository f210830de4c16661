"""Enrichment: what else was going on when an alert fired, added to each notification.

* ``release``: the running release, ``service.version`` of the one OpenTelemetry ``Resource``
  (``obskit.init(release=...)``).
* ``error_groups``: the error groups (:func:`obskit.errors.groups`) whose event count in the
  alerts' window is higher than in the window of the same length just before it, the largest
  rise first (at most :data:`MAX_ERROR_GROUPS`). The window of an alert is its rule's
  ``window_s`` before it became active, up to the notification (a manual alert's: the
  :data:`MANUAL_WINDOW_S` before it was raised). Group histories are per minute and keep the
  last hour, so windows are read in whole minutes and a window past half an hour is compared
  with what is left of the one before.
* ``exemplars``: traces recorded with samples of the rule's metric (a histogram keeps the
  latest sample of each bucket recorded inside a sampled span) in the alert's series and
  window, those beyond the threshold first, the highest values first (at most
  :data:`MAX_EXEMPLARS` a notification).

Links go to the dashboard when ``obskit.init(dashboard_url=...)`` says where it is served:
``<dashboard_url>/errors/<fingerprint>`` and ``<dashboard_url>/traces/<trace id>``, the
dashboard's own pages. Enrichment runs on the delivery worker, before a notification's first
delivery (the evaluating or triggering thread never waits for it), and never stops a
notification: a failure is reported once on stderr and the notification goes without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from obskit import _runtime, diagnostics, errors, metrics
from obskit.alerts.context import ErrorGroupRise, TraceExemplar
from obskit.alerts.notify import Notification
from obskit.alerts.rules import AlertRule, compare
from obskit.errors import ErrorGroup
from obskit.signals import Alert

__all__ = [
    "MANUAL_WINDOW_S",
    "MAX_ERROR_GROUPS",
    "MAX_EXEMPLARS",
    "enrich",
    "exemplars_for",
    "rising_error_groups",
]

#: The most error groups and exemplar traces one notification lists.
MAX_ERROR_GROUPS = 5
MAX_EXEMPLARS = 5
#: The window looked at for an alert raised by hand (it has no rule window).
MANUAL_WINDOW_S = 300.0


def enrich(notification: Notification, rules: Mapping[str, AlertRule], now: float) -> None:
    """Fill ``notification``'s release, error groups and exemplars (never raises)."""
    runtime = _runtime.peek()
    base = runtime.settings.dashboard_url if runtime is not None else None
    notification.release = runtime.release if runtime is not None else None
    alerts = notification.alerts
    if not alerts:
        return
    try:
        start = min(_window_start(alert, rules.get(alert.rule), now) for alert in alerts)
        clean = runtime.pipeline.scrubber.clean_text if runtime is not None else _hidden
        recent = errors.groups(since=(start // 60) * 60)  # seen in the window's minutes
        notification.error_groups = rising_error_groups(recent, start, now, base=base, clean=clean)
    except Exception as exc:
        diagnostics.report("alerts.enrich.errors", f"alert enrichment (error groups): {exc!r}")
    try:
        notification.exemplars = exemplars_for(alerts, rules, now, base=base)
    except Exception as exc:
        diagnostics.report("alerts.enrich.exemplars", f"alert enrichment (exemplars): {exc!r}")


def rising_error_groups(
    groups: Iterable[ErrorGroup],
    start: float,
    end: float,
    *,
    base: str | None = None,
    clean: Any = str,
    limit: int = MAX_ERROR_GROUPS,
) -> list[ErrorGroupRise]:
    """The groups with more events in the minutes ``start``..``end`` than in as many minutes
    just before, the largest rise first.

    ``groups`` most recently seen first (as :func:`obskit.errors.groups` lists them).
    """
    low, high = int(start // 60), int(end // 60)
    span = high - low + 1
    rises: list[tuple[int, int, ErrorGroupRise]] = []
    for group in groups:
        if group.last_seen < low * 60:  # this one and every later one: none in the window
            break
        now_count = before = 0
        for minute_start, count in group.history:
            minute = int(minute_start // 60)
            if low <= minute <= high:
                now_count += count
            elif low - span <= minute < low:
                before += count
        if now_count > before:
            url = f"{base}/errors/{group.fingerprint}" if base else ""
            rise = ErrorGroupRise(group.fingerprint, clean(group.title), now_count, before, url)
            rises.append((now_count - before, now_count, rise))
    rises.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [rise for _, _, rise in rises[:limit]]


def exemplars_for(
    alerts: Iterable[Alert],
    rules: Mapping[str, AlertRule],
    now: float,
    *,
    base: str | None = None,
    limit: int = MAX_EXEMPLARS,
) -> list[TraceExemplar]:
    """Exemplar traces of the alerts' rule metrics, in each alert's series and window."""
    out: list[TraceExemplar] = []
    seen: set[str] = set()
    for alert in alerts:
        rule = rules.get(alert.rule)
        if rule is None:
            continue
        for exemplar in _ranked(_exemplars_of(alert, rule, now), rule):
            if len(out) >= limit:
                return out
            if exemplar.trace_id in seen:
                continue
            seen.add(exemplar.trace_id)
            url = f"{base}/traces/{exemplar.trace_id}" if base else ""
            out.append(
                TraceExemplar(
                    alert.fingerprint,
                    exemplar.trace_id,
                    exemplar.span_id,
                    exemplar.value,
                    exemplar.timestamp,
                    url,
                )
            )
    return out


def _exemplars_of(alert: Alert, rule: AlertRule, now: float) -> list[metrics.Exemplar]:
    """The exemplars of the rule's histogram in the alert's series, recorded in its window."""
    instrument = metrics.STORE.instruments.get(rule.metric)
    if instrument is None or instrument.kind != "histogram":
        return []
    since = now - rule.window_s
    return [
        exemplar
        for series in instrument.collect().series
        if _same_series(series.labels, rule, alert.labels)
        for exemplar in series.exemplars
        if exemplar is not None and exemplar.timestamp >= since
    ]


def _ranked(found: list[metrics.Exemplar], rule: AlertRule) -> list[metrics.Exemplar]:
    """Those beyond the threshold first, then the worst values (highest for ``>``) first."""
    threshold, upward = rule.threshold, rule.op in (">", ">=")

    def rank(exemplar: metrics.Exemplar) -> tuple[bool, float]:
        beyond = threshold is not None and compare(rule.op, exemplar.value, threshold)
        return beyond, exemplar.value if upward else -exemplar.value

    return sorted(found, key=rank, reverse=True)


def _window_start(alert: Alert, rule: AlertRule | None, now: float) -> float:
    began = alert.active_since if alert.active_since is not None else now
    return began - (rule.window_s if rule is not None else MANUAL_WINDOW_S)


def _same_series(
    labels: Mapping[str, str], rule: AlertRule, alert_labels: Mapping[str, str]
) -> bool:
    """Whether a metric series is one the alert is about: selected by the rule, and agreeing
    with the alert on every label both have."""
    if not all(matcher.matches(labels) for matcher in rule.matchers):
        return False
    return all(alert_labels.get(name, value) == value for name, value in labels.items())


def _hidden(text: object) -> str:
    return "(not shown)" if text else ""
