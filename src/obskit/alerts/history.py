"""What happened, for operators: a bounded event log and the numbers asked of it.

Events are plain dicts (``at``, ``event`` and the rest): state changes ("pending", "firing",
"resolved"), "acknowledged", "notified", "delivery_failed", "silenced", "unsilenced". The
statistics are running totals, so they cost nothing to keep: alerts fired per severity, mean
time to acknowledge and mean time to resolve (both from the moment the alert fired).
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any

from obskit.alerts.notify import Notification
from obskit.signals import Alert

__all__ = ["History"]


class History:
    """A bounded log of alerting events, and running statistics (thread-safe)."""

    def __init__(self, size: int = 1000) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.fired: Counter[str] = Counter()
        self._acknowledged = [0, 0.0]  # count, total seconds
        self._resolved = [0, 0.0]

    def add(self, event: str, at: float, **fields: Any) -> None:
        with self._lock:
            self._events.append({"at": at, "event": event, **fields})

    def alert(self, event: str, alert: Alert, at: float, **extra: Any) -> None:
        """A state change (or acknowledgement) of ``alert``; counted in the statistics."""
        if event == "firing":
            self.fired[alert.severity] += 1
        elif event == "resolved" and alert.fired_at is not None:
            _accumulate(self._resolved, at - alert.fired_at)
        elif event == "acknowledged":
            started = alert.fired_at if alert.fired_at is not None else alert.active_since
            _accumulate(self._acknowledged, at - (started if started is not None else at))
        self.add(
            event,
            at,
            rule=alert.rule,
            fingerprint=alert.fingerprint,
            severity=alert.severity,
            value=alert.value,
            **extra,
        )

    def notified(self, notification: Notification) -> None:
        self.add(
            "notified",
            notification.timestamp,
            channel=notification.channel,
            reason=notification.reason,
            status=notification.status,
            alerts=[a.fingerprint for a in notification.alerts],
        )

    def events(self, limit: int | None = None) -> list[dict[str, Any]]:
        with self._lock:
            events = list(self._events)
        return events[-limit:] if limit else events

    def amend_last(self, **fields: Any) -> None:
        with self._lock:
            if self._events:
                self._events[-1].update(fields)

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def summary(self) -> dict[str, Any]:
        return {
            "fired_by_severity": dict(self.fired),
            "mean_time_to_acknowledge_s": _mean(self._acknowledged),
            "mean_time_to_resolve_s": _mean(self._resolved),
        }


def _accumulate(totals: list[Any], seconds: float) -> None:
    totals[0] += 1
    totals[1] += seconds


def _mean(totals: list[Any]) -> float | None:
    return float(totals[1] / totals[0]) if totals[0] else None
