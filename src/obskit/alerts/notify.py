"""Notifications and their delivery: one background worker, retries with backoff, counted.

A :class:`Notification` is what a channel receives: the alerts of one group (or one alert, for
escalation and acknowledgement) with the reason it is sent. :class:`Dispatcher` queues them
(the evaluating thread never does I/O) and one worker thread sends them. A failure that may pass
(connection refused, timeout, HTTP 429 or 5xx) is retried with exponential backoff and full
jitter, without holding up other notifications; one that will not (HTTP 4xx, a bug in a
channel) or that is still failing after ``max_attempts`` is counted as failed and logged once.
Nothing raises into the application.
"""

from __future__ import annotations

import atexit
import dataclasses
import heapq
import itertools
import random
import threading
import time
import urllib.error
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from obskit import _runtime, diagnostics
from obskit._actions import ActionRun
from obskit.alerts.context import ErrorGroupRise, TraceExemplar, context_dict, context_lines
from obskit.signals import Alert, iso_time

__all__ = [
    "ZERO_TIME",
    "Channel",
    "ChannelError",
    "Dispatcher",
    "Notification",
    "alertmanager_alert",
]


@runtime_checkable
class Channel(Protocol):
    """Somewhere notifications go. ``send`` raises on failure; it runs on the worker thread.

    A channel may also have ``send_resolved = False`` (do not tell it about resolutions).
    """

    def send(self, notification: Notification) -> None: ...


class ChannelError(Exception):
    """A delivery failure; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(slots=True)
class Notification:
    """What one channel is told at one time.

    ``reason`` is one of "first", "new_alerts", "resolved", "repeat" (group flushes, as
    Alertmanager decides them), "escalation", "acknowledged", or for a channel that groups
    by itself (``resend_interval_s``) "update" (alerts started or resolved) and "resend"
    (firing alerts told again; ``expires_at`` says until when they hold unless told again).

    Beyond the alerts (see :mod:`obskit.alerts.context`; :meth:`context_lines` renders them):
    ``actions``, the outcomes of the alerts' ``on_fire``/``on_resolve`` actions as they stood
    when it was sent (a notification waits for a running action at most until its timeout);
    ``release``, the running release; ``error_groups``, the error groups whose rate rose in
    the alerts' window; ``exemplars``, traces recorded with samples of the rules' metrics.
    """

    channel: str
    reason: str
    alerts: list[Alert]
    group_key: str = ""
    group_labels: dict[str, str] = field(default_factory=dict)
    timestamp: float = 0.0
    expires_at: float | None = None
    actions: list[ActionRun] = field(default_factory=list)
    release: str | None = None
    error_groups: list[ErrorGroupRise] = field(default_factory=list)
    exemplars: list[TraceExemplar] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``firing`` while any alert fires, ``acknowledged`` for acknowledgements, else
        ``resolved``."""
        if self.reason == "acknowledged":
            return "acknowledged"
        return "firing" if any(a.state == "firing" for a in self.alerts) else "resolved"

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.state == "firing"]

    @property
    def resolved(self) -> list[Alert]:
        return [a for a in self.alerts if a.state == "resolved"]

    @property
    def common_labels(self) -> dict[str, str]:
        return _common([a.labels for a in self.alerts])

    @property
    def common_annotations(self) -> dict[str, str]:
        return _common([a.annotations for a in self.alerts])

    @property
    def title(self) -> str:
        """``[FIRING:2] high_error_rate (name="/cart")``, as Alertmanager titles it."""
        count = len(self.firing) if self.status == "firing" else len(self.alerts)
        names = sorted({a.rule for a in self.alerts})
        extra = {k: v for k, v in self.group_labels.items() if k != "alertname"}
        scope = " ".join(f'{k}="{v}"' for k, v in sorted(extra.items()))
        return f"[{self.status.upper()}:{count}] {', '.join(names)}" + (
            f" ({scope})" if scope else ""
        )

    def context_lines(self) -> list[str]:
        """Action outcomes, release, spiking error groups and traces, one line each, as every
        channel shows them (see :func:`obskit.alerts.context.context_lines`)."""
        return context_lines(self)

    def to_dict(self, *, external_url: str = "", max_alerts: int = 0) -> dict[str, Any]:
        """The JSON body of a webhook: Alertmanager's webhook format (version 4).

        Every field Alertmanager sends is there with its meaning (``status`` is ``firing`` or
        ``resolved``; a firing alert's ``endsAt`` is Go's zero time), so a receiver written
        for Alertmanager reads it unchanged. What obskit knows beyond that (why it was sent,
        acknowledgements, values, the rule's condition, action outcomes, release, error groups,
        exemplars) is under the one key ``obskit``.
        ``max_alerts`` (0: all) truncates the list, as Alertmanager's ``max_alerts`` does.
        """
        alerts = self.alerts
        truncated = 0
        if max_alerts and len(alerts) > max_alerts:
            alerts, truncated = alerts[:max_alerts], len(alerts) - max_alerts
        status = "firing" if any(a.state != "resolved" for a in self.alerts) else "resolved"
        return {
            "version": "4",
            "groupKey": self.group_key,
            "truncatedAlerts": truncated,
            "status": status,
            "receiver": self.channel,
            "groupLabels": self.group_labels,
            "commonLabels": self.common_labels,
            "commonAnnotations": self.common_annotations,
            "externalURL": external_url,
            "alerts": [alertmanager_alert(a) for a in alerts],
            "obskit": {
                "reason": self.reason,
                "status": self.status,
                "title": self.title,
                "alerts": [
                    {
                        "fingerprint": a.fingerprint,
                        "state": a.state,
                        "value": a.value,
                        "details": a.details,
                    }
                    for a in alerts
                ],
                **context_dict(self),
            },
        }


#: Go's zero ``time.Time``: what Alertmanager writes as the ``endsAt`` of a firing alert.
ZERO_TIME = "0001-01-01T00:00:00Z"


def alertmanager_alert(
    alert: Alert, *, ends_at: float | None = None, generator_url: str = ""
) -> dict[str, Any]:
    """``alert`` as Alertmanager shows it in a webhook (``status``, ``labels``,
    ``annotations``, ``startsAt``, ``endsAt``, ``generatorURL``, ``fingerprint``)."""
    if ends_at is None and alert.state == "resolved":
        ends_at = alert.resolved_at or alert.timestamp
    return {
        "status": "resolved" if alert.state == "resolved" else "firing",
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": iso_time(alert.fired_at or alert.active_since or alert.timestamp),
        "endsAt": iso_time(ends_at) if ends_at is not None else ZERO_TIME,
        "generatorURL": generator_url,
        "fingerprint": alert.fingerprint,
    }


def _common(mappings: list[dict[str, str]]) -> dict[str, str]:
    if not mappings:
        return {}
    first = mappings[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in mappings[1:])}


# -- delivery ---------------------------------------------------------------------------------


@dataclass(slots=True)
class ChannelStats:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    dropped: int = 0


_live: weakref.WeakSet[Dispatcher] = weakref.WeakSet()


class Dispatcher:
    """Sends notifications to channels from one worker thread, with retry and backoff."""

    def __init__(
        self,
        channels: Mapping[str, Channel],
        *,
        max_queue_size: int = 1000,
        max_attempts: int = 5,
        retry_initial_backoff_s: float = 0.5,
        retry_max_backoff_s: float = 30.0,
        on_failure: Callable[[Notification, BaseException], None] | None = None,
        prepare: Callable[[Notification], None] | None = None,
    ) -> None:
        self.channels = channels
        #: Called once per notification on the worker, before its first delivery attempt
        #: (the engine's enrichment: work that must not hold up the evaluating thread).
        self.prepare = prepare
        self.max_queue_size = max_queue_size
        self.max_attempts = max_attempts
        self.retry_initial_backoff_s = retry_initial_backoff_s
        self.retry_max_backoff_s = retry_max_backoff_s
        self.on_failure = on_failure
        self.stats: dict[str, ChannelStats] = {}
        self._ready: list[tuple[float, int, Notification, int]] = []  # heap: due, seq, item, tries
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._busy = False
        self._closed = False
        self._worker: threading.Thread | None = None
        _live.add(self)

    def submit(self, notification: Notification) -> bool:
        """Queue ``notification``; ``False`` (counted as dropped) when full or closed.

        What a channel sends leaves the process like any signal: scrubbed first.
        """
        notification = scrubbed(notification)
        stats = self._stats(notification.channel)
        with self._condition:
            if self._closed or len(self._ready) >= self.max_queue_size:
                stats.dropped += 1
                diagnostics.report(
                    "alerts.notification_dropped",
                    f"alert notification to {notification.channel!r} dropped (queue full or "
                    "engine closed)",
                )
                return False
            sequence = next(self._sequence)
            pending = [run for run in notification.actions if not run.done]
            # A notification whose actions still run waits for them, at most until their
            # timeout; the last one to end releases it sooner.
            due = max((run.monotonic_deadline for run in pending), default=0.0)
            heapq.heappush(self._ready, (due, sequence, notification, 0))
            self._start()
            self._condition.notify()
        for run in pending:
            run.when_done(lambda _: self._release(sequence, pending))
        return True

    def _release(self, sequence: int, runs: list[ActionRun]) -> None:
        """Make a held notification due now, once all its ``runs`` have ended."""
        if not all(run.done for run in runs):
            return
        with self._condition:
            for index, (due, seq, notification, tries) in enumerate(self._ready):
                if seq == sequence:
                    if due:
                        self._ready[index] = (0.0, seq, notification, tries)
                        heapq.heapify(self._ready)
                        self._condition.notify_all()
                    return

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every queued notification was delivered or given up on."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while self._ready or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.notify_all()
                self._condition.wait(min(left, 0.05))
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued within ``timeout_s``, then stop the worker."""
        self.flush(timeout_s)
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        if self._worker is not None:
            self._worker.join(timeout_s)

    def after_fork_in_child(self) -> None:
        """Fresh lock and worker; what the parent had queued stays the parent's to send."""
        self._condition = threading.Condition()
        self._ready = []
        self._busy = False
        self._worker = None

    def _stats(self, channel: str) -> ChannelStats:
        stats = self.stats.get(channel)
        if stats is None:
            stats = self.stats.setdefault(channel, ChannelStats())
        return stats

    def _start(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._run, name="obskit-alerts", daemon=True)
            self._worker.start()

    def _run(self) -> None:
        while True:
            with self._condition:
                while True:
                    if self._closed and not self._ready:
                        return
                    if self._ready:
                        wait = self._ready[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                    else:
                        wait = None
                    self._condition.wait(wait)
                _, _, notification, tries = heapq.heappop(self._ready)
                self._busy = True
            try:
                self._deliver(notification, tries)
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()

    def _deliver(self, notification: Notification, tries: int) -> None:
        stats = self._stats(notification.channel)
        channel = self.channels.get(notification.channel)
        if channel is None:
            stats.failed += 1
            diagnostics.report(
                f"alerts.unknown_channel.{notification.channel}",
                f"no alert channel called {notification.channel!r}; notification lost",
            )
            return
        if tries == 0 and self.prepare is not None:
            try:
                self.prepare(notification)
            except Exception as exc:  # never lose a notification to its extras
                diagnostics.report("alerts.prepare", f"preparing a notification: {exc!r}")
        try:
            channel.send(settled(notification))
        except Exception as exc:
            tries += 1
            if _retryable(exc) and tries < self.max_attempts and not self._closed:
                stats.retried += 1
                delay = min(
                    self.retry_max_backoff_s, self.retry_initial_backoff_s * 2 ** (tries - 1)
                )
                due = time.monotonic() + random.uniform(delay / 2, delay)
                with self._condition:
                    heapq.heappush(self._ready, (due, next(self._sequence), notification, tries))
                return
            stats.failed += 1
            diagnostics.report(
                f"alerts.channel_failed.{notification.channel}",
                f"alert channel {notification.channel!r} failed after {tries} attempt(s): {exc!r}",
            )
            if self.on_failure is not None:
                try:
                    self.on_failure(notification, exc)
                except Exception:
                    pass
            return
        stats.sent += 1


def scrubbed(notification: Notification) -> Notification:
    """A copy of ``notification`` with its alerts and group labels through obskit's scrubber."""
    try:
        scrubber = _runtime.current().pipeline.scrubber
        alerts = []
        for alert in notification.alerts:
            copy = dataclasses.replace(alert)
            copy.scrub(scrubber)
            alerts.append(copy)
        return dataclasses.replace(
            notification,
            alerts=alerts,
            group_labels=scrubber.clean_mapping(notification.group_labels),
        )
    except Exception as exc:  # never lose a notification to the scrubber; never leak either
        diagnostics.report("alerts.scrub", f"could not scrub an alert notification: {exc!r}")
        return dataclasses.replace(notification, alerts=[], group_labels={})


def settled(notification: Notification) -> Notification:
    """``notification`` with its action outcomes frozen as they are now (scrubbed): a run still
    going here is past its real-time deadline, so it is recorded as timed out."""
    if not notification.actions:
        return notification
    try:
        clean = _runtime.current().pipeline.scrubber.clean_text
    except Exception:  # never send an unscrubbed message

        def clean(text: object) -> str:
            return "(not shown)" if text else ""

    for run in notification.actions:
        if not run.done:
            run.time_out()
    return dataclasses.replace(
        notification, actions=[run.copy(error=clean(run.error)) for run in notification.actions]
    )


def _retryable(exc: BaseException) -> bool:
    """Whether trying again may help: network trouble, 429 and 5xx yes; other 4xx, bugs no."""
    if isinstance(exc, ChannelError):
        return exc.retryable
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code == 429 or exc.code >= 500
    return isinstance(exc, OSError)  # URLError, timeouts, refused connections, SMTP trouble


@atexit.register
def _flush_at_exit() -> None:
    for dispatcher in list(_live):
        dispatcher.close(2.0)
