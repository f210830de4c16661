"""Channels: where notifications go. Each one is a small class with ``send(notification)``.

They run on the dispatcher's worker thread (:mod:`obskit.alerts.notify`), which retries what
may pass and counts what fails; a channel only has to raise. HTTP channels use the standard
library (``urllib``) with a timeout, so a slow receiver holds the worker for ``timeout_s`` at
most. Every channel shows an alert's ``runbook_url`` annotation (a link where the format has
links). Microsoft Teams, Twilio SMS and Opsgenie have modules of their own.

* :class:`LogChannel`: a log record through obskit's logger.
* :class:`WebhookChannel`: Alertmanager's webhook JSON, optionally signed with HMAC-SHA256.
* :class:`SlackChannel`: a Slack incoming-webhook message (``text`` plus Block Kit blocks).
* :class:`PagerDutyChannel`: PagerDuty Events API v2 (one event per alert, stable dedup_key).
* :class:`EmailChannel`: an email through ``smtplib`` (STARTTLS and login when configured).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import socket
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from typing import Any

from obskit.alerts._http import post_json
from obskit.alerts._render import cut, facts, is_link, label_text, runbook_url, summary
from obskit.alerts.notify import ChannelError, Notification
from obskit.diagnostics import ConfigError
from obskit.signals import Alert, iso_time

__all__ = [
    "EmailChannel",
    "LogChannel",
    "PagerDutyChannel",
    "SlackChannel",
    "WebhookChannel",
    "post_json",
]

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class LogChannel:
    """Logs each notification through obskit's logger (warning or worse while firing).

    >>> from obskit.signals import Alert
    >>> alert = Alert(timestamp=0, rule="disk_full", state="firing", severity="critical")
    >>> LogChannel().describe(Notification("log", "first", [alert]))
    ('critical', '[FIRING:1] disk_full')
    """

    def __init__(self, logger_name: str = "obskit.alerts", *, send_resolved: bool = True) -> None:
        from obskit.logging import get_logger

        self.log = get_logger(logger_name)
        self.send_resolved = send_resolved

    def describe(self, notification: Notification) -> tuple[str, str]:
        """The level and message this channel logs for ``notification``."""
        if notification.status != "firing":
            return "info", notification.title
        severities = {a.severity for a in notification.firing}
        level = next((s for s in ("critical", "error") if s in severities), "warning")
        return level, notification.title

    def send(self, notification: Notification) -> None:
        level, message = self.describe(notification)
        alerts = [
            {"rule": a.rule, "state": a.state, "value": a.value, "labels": a.labels}
            | ({"runbook_url": url} if (url := runbook_url(a)) else {})
            for a in notification.alerts
        ]
        self.log.log(
            level,
            message,
            channel=notification.channel,
            reason=notification.reason,
            group=notification.group_labels,
            alerts=alerts,
            annotations=notification.common_annotations,
            context=notification.context_lines(),
        )


class WebhookChannel:
    """POSTs :meth:`Notification.to_dict` (Alertmanager's webhook format, version 4) as JSON.

    A receiver written for Alertmanager's ``webhook_config`` reads it unchanged;
    ``external_url`` fills ``externalURL`` (where people look at the alerts) and
    ``max_alerts`` truncates long notifications (``truncatedAlerts`` counts the rest), as in
    Alertmanager. obskit's own fields (reason, acknowledgements, values) are under ``obskit``.

    With ``hmac_secret``, the header ``X-Obskit-Signature: sha256=<hex>`` carries
    HMAC-SHA256 of the exact body bytes, so the receiver can check who sent it.

    A receiver checks it like this (``body`` being the raw request body):

    >>> import hashlib, hmac
    >>> body = b'{"status": "firing"}'
    >>> header = WebhookChannel("http://127.0.0.1:9/hook", hmac_secret="s3cret").signature(body)
    >>> expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    >>> hmac.compare_digest(header, expected)
    True
    """

    signature_header = "X-Obskit-Signature"

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        hmac_secret: str | bytes | None = None,
        *,
        timeout_s: float = 5.0,
        send_resolved: bool = True,
        external_url: str = "",
        max_alerts: int = 0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"webhook url must start with http:// or https://, not {url!r}")
        if max_alerts < 0:
            raise ConfigError("max_alerts must be >= 0 (0: send every alert)")
        self.url = url
        self.external_url = external_url
        self.max_alerts = max_alerts
        self.headers = dict(headers or {})
        self._secret = hmac_secret.encode() if isinstance(hmac_secret, str) else hmac_secret
        self.timeout_s = timeout_s
        self.send_resolved = send_resolved

    @property
    def signs(self) -> bool:
        """Whether bodies carry an HMAC signature."""
        return self._secret is not None

    def signature(self, body: bytes) -> str:
        assert self._secret is not None
        return "sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest()

    def payload(self, notification: Notification) -> dict[str, Any]:
        return notification.to_dict(external_url=self.external_url, max_alerts=self.max_alerts)

    def send(self, notification: Notification) -> None:
        body = json.dumps(self.payload(notification), default=str).encode()
        headers = dict(self.headers)
        if self._secret is not None:
            headers[self.signature_header] = self.signature(body)
        post_json(self.url, body, headers, self.timeout_s)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class SlackChannel:
    """A Slack incoming webhook: ``text`` (the fallback) and Block Kit ``blocks``.

    >>> from obskit.signals import Alert
    >>> alert = Alert(timestamp=0, rule="p95_latency", state="firing", severity="warning",
    ...               value=812.0, annotations={"summary": "checkout is slow"})
    >>> message = SlackChannel("https://hooks.example/T/B/X").payload(
    ...     Notification("slack", "first", [alert]))
    >>> message["text"]
    ':rotating_light: [FIRING:1] p95_latency'
    >>> [block["type"] for block in message["blocks"]]
    ['header', 'section']
    """

    def __init__(
        self,
        webhook_url: str,
        *,
        username: str | None = None,
        icon_emoji: str | None = None,
        timeout_s: float = 5.0,
        send_resolved: bool = True,
    ) -> None:
        if not webhook_url.startswith(("http://", "https://")):
            raise ConfigError("webhook_url must be the https URL Slack gave for the webhook")
        self.webhook_url = webhook_url
        self.username = username
        self.icon_emoji = icon_emoji
        self.timeout_s = timeout_s
        self.send_resolved = send_resolved

    def payload(self, notification: Notification) -> dict[str, Any]:
        icon = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}.get(
            notification.status, ":eyes:"
        )
        text = f"{icon} {notification.title}"
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": cut(text, 150)}}
        ]
        for alert in notification.alerts[:45]:  # Slack allows 50 blocks a message
            blocks.append(
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": cut(_slack_line(alert), 3000)},
                }
            )
        if len(notification.alerts) > 45:
            more = f"... and {len(notification.alerts) - 45} more"
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
        lines = notification.context_lines()
        if lines:  # actions, release, error groups, traces: one context block (10 elements)
            elements = [{"type": "mrkdwn", "text": cut(line, 2000)} for line in lines[:10]]
            blocks.append({"type": "context", "elements": elements})
        message: dict[str, Any] = {"text": text, "blocks": blocks}
        if self.username:
            message["username"] = self.username
        if self.icon_emoji:
            message["icon_emoji"] = self.icon_emoji
        return message

    def send(self, notification: Notification) -> None:
        body = json.dumps(self.payload(notification), default=str).encode()
        post_json(self.webhook_url, body, {}, self.timeout_s)

    def __repr__(self) -> str:
        return "SlackChannel(webhook_url=<hidden>)"


def _slack_line(alert: Alert) -> str:
    text = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    labels = label_text(alert)
    parts = [f"*{alert.rule}* is *{alert.state}* ({alert.severity})"]
    if alert.value is not None:
        parts.append(f"value: `{alert.value:.6g}`")
    if text:
        parts.append(_slack_escape(text))
    if labels:
        parts.append(f"_{_slack_escape(labels)}_")
    by = alert.details.get("acknowledged_by")
    if by:
        parts.append(f"acknowledged by {by}: {alert.details.get('comment', '')}")
    url = runbook_url(alert)
    if is_link(url):
        parts.append(f"<{_slack_escape(url)}|Runbook>")
    elif url:
        parts.append(f"Runbook: {_slack_escape(url)}")
    return "\n".join(parts)


def _slack_escape(text: str) -> str:
    """Slack's three control characters, escaped as its mrkdwn wants them."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class PagerDutyChannel:
    """PagerDuty Events API v2: one event per alert, ``dedup_key`` = the alert fingerprint.

    A firing alert is a ``trigger``, an acknowledgement an ``acknowledge``, a resolution a
    ``resolve``, all with the same dedup_key, so PagerDuty keeps one incident per alert
    instance. ``url`` can point elsewhere (the EU endpoint, a proxy, a test server).

    >>> from obskit.signals import Alert
    >>> alert = Alert(timestamp=0, rule="disk_full", state="firing", severity="critical",
    ...               fingerprint="a4b9e84dd7fd0d4f", annotations={"summary": "disk 97% full"})
    >>> event = PagerDutyChannel(routing_key="R" * 32).event(alert, "trigger")
    >>> event["event_action"], event["dedup_key"], event["payload"]["summary"]
    ('trigger', 'obskit-a4b9e84dd7fd0d4f', 'disk 97% full')
    """

    def __init__(
        self,
        routing_key: str,
        url: str = PAGERDUTY_EVENTS_URL,
        *,
        source: str | None = None,
        timeout_s: float = 5.0,
        send_resolved: bool = True,
    ) -> None:
        if len(routing_key) != 32:
            raise ConfigError("routing_key must be the 32-character Events API v2 integration key")
        self.routing_key = routing_key
        self.url = url
        self.source = source or socket.gethostname()
        self.timeout_s = timeout_s
        self.send_resolved = send_resolved

    def event(self, alert: Alert, action: str, context: Sequence[str] = ()) -> dict[str, Any]:
        """The Events API v2 body for ``alert`` and ``action`` (trigger, acknowledge, resolve);
        ``context`` (the notification's context lines) goes in ``custom_details``."""
        body: dict[str, Any] = {
            "routing_key": self.routing_key,
            "event_action": action,
            "dedup_key": f"obskit-{alert.fingerprint}",
        }
        if action == "trigger":
            body["payload"] = {
                "summary": cut(summary(alert), 1024),
                "source": alert.service or self.source,
                "severity": alert.severity,
                "timestamp": iso_time(alert.fired_at or alert.timestamp),
                "component": alert.labels.get("name") or alert.details.get("metric", ""),
                "group": alert.rule,
                "class": alert.details.get("metric", ""),
                "custom_details": {
                    "value": alert.value,
                    "labels": alert.labels,
                    "annotations": alert.annotations,
                },
            }
            if context:
                body["payload"]["custom_details"]["context"] = list(context)
            body["client"] = "obskit"
            url = runbook_url(alert)
            if is_link(url):
                body["links"] = [{"href": url, "text": "Runbook"}]
            elif url:
                body["payload"]["custom_details"]["runbook"] = url
        return body

    def send(self, notification: Notification) -> None:
        status = notification.status
        for alert in notification.alerts:
            if status == "acknowledged":
                action = "acknowledge"
            else:
                action = "trigger" if alert.state == "firing" else "resolve"
            event = self.event(alert, action, notification.context_lines())
            body = json.dumps(event, default=str).encode()
            post_json(self.url, body, {}, self.timeout_s)

    def __repr__(self) -> str:
        return f"PagerDutyChannel(url={self.url!r}, routing_key=<hidden>)"


class EmailChannel:
    """Sends a plain-text email per notification through ``smtplib``.

    ``starttls=True`` upgrades the connection before ``login`` (port 587); ``use_ssl=True``
    connects with TLS from the start (port 465). SMTP replies 4xx are retried, 5xx are not.
    """

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        sender: str,
        recipients: Sequence[str],
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        use_ssl: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        timeout_s: float = 10.0,
        send_resolved: bool = True,
    ) -> None:
        if not recipients:
            raise ConfigError("an EmailChannel needs at least one recipient")
        if starttls and use_ssl:
            raise ConfigError("choose starttls (port 587) or use_ssl (port 465), not both")
        self.host, self.port = host, port
        self.sender = sender
        self.recipients = list(recipients)
        self.username, self._password = username, password
        self.starttls, self.use_ssl = starttls, use_ssl
        self.ssl_context = ssl_context
        self.timeout_s = timeout_s
        self.send_resolved = send_resolved

    @property
    def password(self) -> str | None:
        return self._password

    def message(self, notification: Notification) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = notification.title
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        lines = [notification.title, ""]
        for alert in notification.alerts:
            lines.append(f"{alert.rule} is {alert.state} ({alert.severity})")
            lines.append(summary(alert))
            lines.extend(f"{title}: {text}" for title, text in facts(alert))
            lines.append("")
        lines.extend(notification.context_lines())
        message.set_content("\n".join(lines))
        return message

    def send(self, notification: Notification) -> None:
        context = self.ssl_context or ssl.create_default_context()
        try:
            if self.use_ssl:
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout_s, context=context
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            with client:
                client.ehlo()
                if self.starttls:
                    client.starttls(context=context)
                    client.ehlo()
                if self.username is not None:
                    client.login(self.username, self._password or "")
                client.send_message(self.message(notification))
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise ChannelError(
                f"SMTP refused recipients: {exc.recipients!r}", retryable=min(codes) < 500
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise ChannelError(
                f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", retryable=exc.smtp_code < 500
            ) from exc

    def __repr__(self) -> str:
        return f"EmailChannel({self.host!r}, {self.port}, recipients={self.recipients!r})"
