"""What a notification carries beyond its alerts: what was done, and what else was going on.

An on-call engineer opening an alert wants to know whether the remediation ran, which release
is running, which error groups spiked in the same window and which traces show the problem.
:class:`~obskit.alerts.notify.Notification` carries these as plain data (``actions``,
``release``, ``error_groups``, ``exemplars``); :func:`context_lines` renders them as short
lines of text that every channel can show the same way (links only when the dashboard's URL is
configured). The engine fills them (:mod:`obskit.alerts.actions`, :mod:`obskit.alerts.enrich`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from obskit.alerts.notify import Notification

__all__ = ["ErrorGroupRise", "TraceExemplar", "context_dict", "context_lines"]


@dataclass(frozen=True, slots=True)
class ErrorGroupRise:
    """An error group whose rate rose in an alert's window.

    ``count`` events in the window against ``previous_count`` in the window just before it;
    ``url`` is its dashboard page (``<dashboard_url>/errors/<fingerprint>``) when configured.
    """

    fingerprint: str
    title: str
    count: int
    previous_count: int
    url: str = ""

    def describe(self) -> str:
        """``Error group ValueError: bad cart: 12 events in the window (2 before)``."""
        line = (
            f"Error group {self.title}: {self.count} event{'s' if self.count != 1 else ''} in "
            f"the window ({self.previous_count} before)"
        )
        return f"{line} {self.url}" if self.url else f"{line} [{self.fingerprint[:12]}]"


@dataclass(frozen=True, slots=True)
class TraceExemplar:
    """A trace recorded with a sample of an alert's metric (a histogram bucket's exemplar).

    ``alert`` is the fingerprint of the alert it illustrates; ``url`` the dashboard's trace
    page (``<dashboard_url>/traces/<trace_id>``) when configured.
    """

    alert: str
    trace_id: str
    span_id: str
    value: float
    timestamp: float
    url: str = ""

    def describe(self) -> str:
        line = f"Trace {self.trace_id} (value {self.value:.6g})"
        return f"{line} {self.url}" if self.url else line


def context_lines(notification: Notification) -> list[str]:
    """The notification's context as lines of text, in the order channels show them.

    >>> from obskit.alerts.notify import Notification
    >>> note = Notification("slack", "first", [], release="1.4.2",
    ...                     error_groups=[ErrorGroupRise("9f2c", "KeyError: 'sku'", 12, 0)])
    >>> context_lines(note)
    ['Release: 1.4.2', "Error group KeyError: 'sku': 12 events in the window (0 before) [9f2c]"]
    """
    lines = [run.describe() for run in notification.actions]
    if notification.release:
        lines.append(f"Release: {notification.release}")
    lines.extend(group.describe() for group in notification.error_groups)
    lines.extend(exemplar.describe() for exemplar in notification.exemplars)
    return lines


def context_dict(notification: Notification) -> dict[str, Any]:
    """The same context as plain data (the webhook body's ``obskit`` fields)."""
    return {
        "actions": [run.to_dict() for run in notification.actions],
        "release": notification.release,
        "error_groups": [asdict(group) for group in notification.error_groups],
        "exemplars": [asdict(exemplar) for exemplar in notification.exemplars],
    }
