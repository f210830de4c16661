"""What every channel says about an alert, written once: its summary, its labels, its value,
who acknowledged it, and its runbook (the ``runbook_url`` annotation, as in Prometheus rules).

Each channel lays these out in its own format (Slack mrkdwn, an Adaptive Card, an SMS, an
Opsgenie description); the words come from here so that they agree.
"""

from __future__ import annotations

from collections.abc import Iterable

from obskit.signals import Alert

__all__ = ["cut", "facts", "is_link", "label_text", "runbook_url", "runbook_urls", "summary"]

#: The annotation that links an alert to what to do about it (Prometheus' convention).
RUNBOOK = "runbook_url"


def cut(text: str, limit: int, ellipsis: str = "\u2026") -> str:
    """``text`` at most ``limit`` characters long, ending in ``ellipsis`` when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(ellipsis), 0)] + ellipsis[:limit]


def summary(alert: Alert) -> str:
    """The ``summary`` annotation, else ``description``, else ``rule: value``."""
    text = alert.annotations.get("summary") or alert.annotations.get("description")
    if text:
        return str(text)
    return f"{alert.rule}: {alert.value:.6g}" if alert.value is not None else alert.rule


def runbook_url(alert: Alert) -> str:
    """The alert's ``runbook_url`` annotation ("" without one)."""
    return str(alert.annotations.get(RUNBOOK) or "")


def runbook_urls(alerts: Iterable[Alert]) -> list[str]:
    """The distinct runbook URLs of ``alerts`` that are web links, in order."""
    return list(dict.fromkeys(url for url in map(runbook_url, alerts) if is_link(url)))


def is_link(text: str) -> bool:
    """Whether ``text`` is an absolute http(s) URL (a button or a link may point to it)."""
    return text.startswith(("https://", "http://")) and len(text) > 8 and " " not in text


def label_text(alert: Alert) -> str:
    """``k=v, ...`` of the alert's labels but ``alertname`` (the rule says it)."""
    return ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()) if k != "alertname")


def facts(alert: Alert) -> list[tuple[str, str]]:
    """(title, text) pairs beyond the summary: value, labels, acknowledgement, runbook."""
    out: list[tuple[str, str]] = []
    if alert.value is not None:
        out.append(("Value", f"{alert.value:.6g}"))
    labels = label_text(alert)
    if labels:
        out.append(("Labels", labels))
    by = alert.details.get("acknowledged_by")
    if by:
        comment = alert.details.get("comment", "")
        out.append(("Acknowledged by", f"{by}: {comment}" if comment else str(by)))
    url = runbook_url(alert)
    if url:
        out.append(("Runbook", url))
    return out
