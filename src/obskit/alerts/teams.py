"""Microsoft Teams: an Adaptive Card posted to a Workflows (Power Automate) webhook.

Teams' Office 365 connectors (and their ``MessageCard``) are retired; a channel's webhook is now
a Workflows flow ("Post to a channel when a webhook request is received"), which takes a
Bot Framework message with one Adaptive Card attachment::

    {"type": "message",
     "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                      "contentUrl": null,
                      "content": {"type": "AdaptiveCard", "version": "1.2", ...}}]}

The card declares schema version 1.2, as Alertmanager's ``msteamsv2`` does: everything it uses
(TextBlock, FactSet, Container, Action.OpenUrl) exists there, and every Teams client renders it
(Teams renders up to 1.5). A message is at most 28 KB: a long notification keeps its first
alerts and says how many it left out. Resolved notifications are a card of their own, in green.
What the notification carries beyond its alerts (action outcomes, the running release, error
groups that rose, traces) closes the card, one line each.
"""

from __future__ import annotations

import json
from typing import Any

from obskit.alerts._http import post
from obskit.alerts._render import cut, facts, is_link, runbook_urls, summary
from obskit.alerts.notify import Notification
from obskit.diagnostics import ConfigError, require_number
from obskit.signals import Alert

__all__ = ["TeamsChannel"]

CARD_VERSION = "1.2"
#: Teams refuses messages over 28 KB; leave room for what the flow adds around the card.
MAX_MESSAGE_BYTES = 27 * 1024
#: Alerts shown on one card at most (the rest are counted).
MAX_ALERTS = 20
#: Context lines (actions, release, error groups, traces) shown at most.
MAX_CONTEXT_LINES = 20
_COLORS = {"firing": "Attention", "resolved": "Good", "acknowledged": "Warning"}


class TeamsChannel:
    """Posts each notification as an Adaptive Card to a Teams Workflows webhook.

    ``webhook_url`` is the URL the Workflows flow shows (a secret: it holds the flow's
    signature); it never appears in a repr, a log line or a diagnostic.

    >>> from obskit.signals import Alert
    >>> alert = Alert(timestamp=0, rule="p95_latency", state="firing", severity="warning",
    ...               value=812.0, annotations={"summary": "checkout is slow",
    ...                                         "runbook_url": "https://wiki.example/slow"})
    >>> channel = TeamsChannel("https://example.powerautomate.com/workflows/1?sig=s3cret")
    >>> message = channel.payload(Notification("teams", "first", [alert]))
    >>> (attachment,) = message["attachments"]
    >>> card = attachment["content"]
    >>> card["type"], card["version"], card["body"][0]["text"]
    ('AdaptiveCard', '1.2', '[FIRING:1] p95_latency')
    >>> card["actions"]
    [{'type': 'Action.OpenUrl', 'title': 'Runbook', 'url': 'https://wiki.example/slow'}]
    >>> channel
    TeamsChannel(webhook_url=<hidden>)
    """

    def __init__(
        self,
        webhook_url: str,
        *,
        timeout_s: float = 5.0,
        send_resolved: bool = True,
        max_alerts: int = MAX_ALERTS,
    ) -> None:
        if not isinstance(webhook_url, str) or not webhook_url.startswith(("https://", "http://")):
            raise ConfigError(
                "TeamsChannel: webhook_url must be the https:// URL of the Teams Workflows flow "
                "('Post to a channel when a webhook request is received'); the value given "
                "does not start with https:// (it is not shown: the URL is a secret)"
            )
        require_number("TeamsChannel", "timeout_s", timeout_s)
        require_number("TeamsChannel", "max_alerts", max_alerts, integer=True)
        self._url = webhook_url
        self.timeout_s = timeout_s
        self.send_resolved = send_resolved
        self.max_alerts = max_alerts

    @property
    def webhook_url(self) -> str:
        return self._url

    def payload(self, notification: Notification) -> dict[str, Any]:
        """The message: one Adaptive Card attachment, at most 28 KB once encoded."""
        shown = min(len(notification.alerts), self.max_alerts)
        while True:
            message = _message(_card(notification, shown))
            if shown <= 1 or len(_encode(message)) <= MAX_MESSAGE_BYTES:
                return message
            shown = max(1, shown * 3 // 4)

    def send(self, notification: Notification) -> None:
        post(self._url, _encode(self.payload(notification)), {}, self.timeout_s)

    def __repr__(self) -> str:
        return "TeamsChannel(webhook_url=<hidden>)"


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, default=str, ensure_ascii=False).encode()


def _message(card: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def _card(notification: Notification, shown: int) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": cut(notification.title, 400),
            "weight": "Bolder",
            "size": "Medium",
            "color": _COLORS.get(notification.status, "Default"),
            "wrap": True,
        }
    ]
    alerts = notification.alerts
    body.extend(_alert_block(alert) for alert in alerts[:shown])
    if len(alerts) > shown:
        body.append(
            {"type": "TextBlock", "text": f"... and {len(alerts) - shown} more", "isSubtle": True}
        )
    context = notification.context_lines()[:MAX_CONTEXT_LINES]
    if context:  # action outcomes, release, error groups, traces
        lines = [{"type": "TextBlock", "text": cut(line, 1000), "wrap": True} for line in context]
        body.append({"type": "Container", "separator": True, "items": lines})
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    links = runbook_urls(alerts[:shown])[:3]
    if links:
        card["actions"] = [
            {
                "type": "Action.OpenUrl",
                "title": "Runbook" if len(links) == 1 else f"Runbook {number}",
                "url": url,
            }
            for number, url in enumerate(links, 1)
        ]
    return card


def _alert_block(alert: Alert) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": cut(f"**{alert.rule}** is **{alert.state}** ({alert.severity})", 400),
            "wrap": True,
        },
        {"type": "TextBlock", "text": cut(summary(alert), 2000), "wrap": True},
    ]
    shown = [
        {"title": title, "value": _link(text) if title == "Runbook" else cut(text, 1000)}
        for title, text in facts(alert)
    ]
    if shown:
        items.append({"type": "FactSet", "facts": shown})
    return {"type": "Container", "separator": True, "items": items}


def _link(url: str) -> str:
    """A runbook as a markdown link when it is a web link (cut, it would be a broken one)."""
    if is_link(url) and len(url) <= 1000:
        return f"[{url}]({url})"
    return cut(url, 1000)
