"""Alerts out of the engine: as signals down the pipeline and as log records.

A transition becomes an :class:`~obskit.signals.Alert` (a snapshot: later changes to the live
instance do not alter it). It is sent down the pipeline (a copy, since the pipeline scrubs what
it is given in place) and logged on ``obskit.alerts``: firing at warning (error for error and
critical rules), the rest at info. (Metric series are the metrics store's to export.)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from obskit import _runtime
from obskit.alerts.notify import Notification
from obskit.alerts.rules import ManualRule
from obskit.alerts.state import AlertInstance
from obskit.signals import Alert

__all__ = ["Publisher", "snapshot"]


def snapshot(instance: AlertInstance, now: float, muted_by: str | None = None) -> Alert:
    """The instance as an Alert signal at ``now``; ``details`` holds the rule's condition (for
    an alert raised by hand: ``source="manual"`` and its ``dedup_key``)."""
    rule = instance.rule
    details: dict[str, Any]
    if isinstance(rule, ManualRule):
        details = {"source": "manual", "dedup_key": rule.dedup_key}
    else:
        details = {
            "metric": rule.metric,
            "aggregation": rule.aggregation,
            "window_s": rule.window_s,
            "op": rule.op,
            "threshold": rule.threshold,
        }
    if instance.score is not None:
        details["score"] = instance.score
    if instance.acknowledged_at is not None:
        details.update(
            acknowledged_by=instance.acknowledged_by, comment=instance.acknowledged_comment
        )
    if instance.resolved_by or instance.resolved_comment:
        details.update(resolved_by=instance.resolved_by, comment=instance.resolved_comment)
    if instance.escalated:
        details["escalated"] = instance.escalated
    if muted_by is not None:
        details["muted_by"] = muted_by
    return Alert(
        timestamp=now,
        rule=rule.name,
        state=instance.state,
        severity=instance.severity or rule.severity,
        value=instance.value,
        labels=dict(instance.labels),
        annotations=dict(instance.annotations),
        active_since=instance.active_at,
        fingerprint=instance.fingerprint,
        fired_at=instance.fired_at,
        resolved_at=instance.resolved_at,
        details=details,
    )


class Publisher:
    """Sends alerts to the pipeline and the log."""

    def __init__(self) -> None:
        self._log: Any = None

    def publish(self, alerts: list[Alert]) -> None:
        if not alerts:
            return
        log = self._logger()
        for alert in alerts:
            _runtime.emit(
                dataclasses.replace(alert, labels=dict(alert.labels), details=dict(alert.details))
            )
            level = "info"
            if alert.state == "firing":
                level = "error" if alert.severity in ("error", "critical") else "warning"
            log.log(
                level,
                f"alert {alert.rule} {alert.state}",
                alert=alert.rule,
                state=alert.state,
                severity=alert.severity,
                value=alert.value,
                labels=alert.labels,
                fingerprint=alert.fingerprint,
            )

    def log_failure(self, notification: Notification, exc: BaseException) -> None:
        """A notification that could not be delivered, on the ``obskit.alerts`` logger."""
        try:
            self._logger().warning(
                "alert notification failed",
                channel=notification.channel,
                reason=notification.reason,
                status=notification.status,
                error=repr(exc),
            )
        except Exception:  # the log is best effort here; the failure is already counted
            pass

    def _logger(self) -> Any:
        if self._log is None:
            from obskit.logging import get_logger

            self._log = get_logger("obskit.alerts")
        return self._log
