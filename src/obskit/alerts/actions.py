"""Rules that act: ``on_fire`` and ``on_resolve`` run when a rule's alert fires or resolves.

An action is a function called with the :class:`~obskit.signals.Alert` (see
:mod:`obskit._actions`: its own thread, ``timeout_s``, a ``min_interval_s`` rate limit). Its
outcome lands in the engine's history (event ``"action"``: hook, function, alert fingerprint,
status ``ok`` / ``error`` / ``timed_out`` / ``rate_limited``, the error's message, duration)
and in every notification about the alert (``Notification.actions``). A notification waits for
a running action at most until the action's timeout, so a failing or hanging action never stops
delivery; a failure is also reported once on stderr, never raised.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Container

from obskit import diagnostics
from obskit._actions import ActionRun, ActionRunner
from obskit.alerts.history import History
from obskit.alerts.notify import Notification
from obskit.alerts.rules import AlertRule
from obskit.alerts.state import AlertInstance
from obskit.signals import Alert

__all__ = ["AlertActions"]

HOOKS = {"firing": "on_fire", "resolved": "on_resolve"}


class AlertActions:
    """Runs the rules' actions; remembers each alert's latest runs for its notifications."""

    def __init__(self, clock: Callable[[], float], history: History) -> None:
        self.history = history
        self.runner = ActionRunner(clock=clock, name="alert-action")
        self._runs: dict[str, dict[str, ActionRun]] = {}
        #: How many runs ended each way ("ok", "error", "timed_out", "rate_limited").
        self.outcomes: Counter[str] = Counter()
        self._count_lock = threading.Lock()  # outcomes end on their own threads

    def transition(self, instance: AlertInstance, alert: Alert) -> None:
        """Run the rule's action for this state change, if it has one."""
        rule = instance.rule
        hook = HOOKS.get(alert.state)
        if hook is None or not isinstance(rule, AlertRule):
            return
        action = rule.on_fire if hook == "on_fire" else rule.on_resolve
        if hook == "on_fire":
            self._runs.pop(alert.fingerprint, None)  # a new episode: earlier outcomes are old
        if action is None:
            return
        run = self.runner.run(action, hook, alert.fingerprint, alert)
        self._runs.setdefault(alert.fingerprint, {})[hook] = run
        run.when_done(lambda ended: self._record(ended, rule.name))

    def attach(self, notification: Notification) -> None:
        """Give ``notification`` the runs of its alerts (running ones are waited for)."""
        notification.actions = [
            run
            for alert in notification.alerts
            for run in self._runs.get(alert.fingerprint, {}).values()
        ]

    def expire(self, now: float) -> None:
        """Time out the runs past their deadline at ``now``."""
        self.runner.expire(now)

    def forget(self, keep: Container[str]) -> None:
        """Drop the ended runs of alerts not in ``keep`` (active, or in a group)."""
        for fingerprint, runs in list(self._runs.items()):
            if fingerprint not in keep and all(run.done for run in runs.values()):
                del self._runs[fingerprint]

    def after_fork_in_child(self) -> None:
        self.runner.after_fork_in_child()
        self._count_lock = threading.Lock()

    def _record(self, run: ActionRun, rule: str) -> None:
        at = run.finished_at if run.finished_at is not None else run.started_at
        outcome = run.to_dict()
        self.history.add("action", at, rule=rule, fingerprint=outcome.pop("subject"), **outcome)
        with self._count_lock:
            self.outcomes[run.status] += 1
        if run.status != "ok":
            diagnostics.report(
                f"alerts.action.{run.name}", f"alert action {run.describe()} (alert {run.subject})"
            )
