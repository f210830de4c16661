"""Alerts to Alertmanager, the way Prometheus sends them (``POST /api/v2/alerts``).

:class:`AlertmanagerChannel` is a channel that leaves grouping, dedup, repeat, silences and
inhibition to Alertmanager: the engine does not group for it but tells it of every alert that
starts firing or resolves at the evaluation where that happens, and of every firing alert again
each ``resend_interval_s`` (Prometheus' ``resend_delay``, 1 minute). Each alert goes out in
Alertmanager's list format with ``startsAt``, ``endsAt`` and ``generatorURL``: a firing alert's
``endsAt`` is four resend (or evaluation) intervals ahead, so if this process dies Alertmanager
resolves the alert by itself once that time passes; a resolved alert's ``endsAt`` is when it
resolved. Several replicas of a service each run their engine with their own ``instance``
external label (see ``AlertEngine(external_labels=...)``) and one Alertmanager groups their
alerts into one notification.

An answer 4xx (a malformed alert) is not retried, and the failure logged carries Alertmanager's
own message; connection errors, 429 and 5xx are retried with backoff by the dispatcher.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from obskit.alerts._http import post_json
from obskit.alerts.notify import ChannelError, Notification
from obskit.alerts.prometheus import label_names
from obskit.diagnostics import ConfigError
from obskit.signals import Alert, iso_time

__all__ = ["AlertmanagerChannel"]

API_PATH = "/api/v2/alerts"


class AlertmanagerChannel:
    """Posts alerts to an Alertmanager, re-sending firing ones every ``resend_interval_s``.

    ``url`` is Alertmanager's base URL (``http://alertmanager:9093``; the API path is added).
    ``generator_url`` is a template for each alert's ``generatorURL`` (where the alert comes
    from) with ``{rule}``, ``{fingerprint}`` and ``{service}``.

    >>> from obskit.signals import Alert
    >>> channel = AlertmanagerChannel("http://127.0.0.1:9093")
    >>> alert = Alert(timestamp=100.0, rule="high_error_rate", state="firing",
    ...               severity="critical", fired_at=40.0, service="shop",
    ...               labels={"alertname": "high_error_rate", "http.route": "/cart", "env": ""})
    >>> note = Notification("am", "update", [alert], timestamp=100.0, expires_at=340.0)
    >>> channel.url
    'http://127.0.0.1:9093/api/v2/alerts'
    >>> (posted,) = channel.payload(note)
    >>> posted["labels"], posted["startsAt"], posted["endsAt"]
    ({'alertname': 'high_error_rate', 'http_route': '/cart'}, '1970-01-01T00:00:40.000Z', \
'1970-01-01T00:05:40.000Z')
    >>> posted["generatorURL"]
    'obskit://shop/rules/high_error_rate'
    """

    def __init__(
        self,
        url: str,
        *,
        resend_interval_s: float = 60.0,
        generator_url: str = "obskit://{service}/rules/{rule}",
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 5.0,
        send_resolved: bool = True,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"Alertmanager url must start with http:// or https://, not {url!r} "
                "(e.g. http://127.0.0.1:9093)"
            )
        if not resend_interval_s > 0:
            raise ConfigError("resend_interval_s must be > 0 (Prometheus' default is 60)")
        try:
            generator_url.format(rule="", fingerprint="", service="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"generator_url {generator_url!r} may only use {{rule}}, {{fingerprint}} and "
                f"{{service}} ({exc!r})"
            ) from None
        base = url.rstrip("/")
        self.url = base if base.endswith(API_PATH) else base + API_PATH
        self.resend_interval_s = resend_interval_s
        self.generator_url = generator_url
        self.headers = dict(headers or {})
        self.timeout_s = timeout_s
        self.send_resolved = send_resolved

    def payload(self, notification: Notification) -> list[dict[str, Any]]:
        """The body of ``POST /api/v2/alerts``: a list of postable alerts."""
        expires_at = notification.expires_at
        if expires_at is None:
            expires_at = notification.timestamp + 4 * self.resend_interval_s
        return [self._alert(alert, expires_at) for alert in notification.alerts]

    def _alert(self, alert: Alert, expires_at: float) -> dict[str, Any]:
        resolved = alert.state == "resolved"
        ends_at = (alert.resolved_at or alert.timestamp) if resolved else expires_at
        labels = {k: v for k, v in label_names(alert.labels).items() if v != ""}
        return {
            "labels": labels,
            "annotations": label_names(alert.annotations),
            "startsAt": iso_time(alert.fired_at or alert.active_since or alert.timestamp),
            "endsAt": iso_time(ends_at),
            "generatorURL": self.generator_url.format(
                rule=alert.rule,
                fingerprint=alert.fingerprint,
                service=alert.service or alert.labels.get("service", ""),
            ),
        }

    def send(self, notification: Notification) -> None:
        if notification.reason == "acknowledged":  # Alertmanager has no acknowledgement
            return
        alerts = self.payload(notification)
        if not alerts:
            return
        body = json.dumps(alerts, default=str).encode()
        try:
            post_json(self.url, body, self.headers, self.timeout_s)
        except ChannelError as exc:
            raise ChannelError(
                f"Alertmanager refused {len(alerts)} alert(s): {exc}", retryable=exc.retryable
            ) from None

    def __repr__(self) -> str:
        return f"AlertmanagerChannel({self.url!r}, resend_interval_s={self.resend_interval_s:g})"
