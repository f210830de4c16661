"""What the parts of :class:`~obskit.alerts.engine.AlertEngine` share.

The engine is one class assembled from parts by concept: setting it up
(:mod:`~obskit.alerts.setup`), acting on live alerts (:mod:`~obskit.alerts.operations`), and
evaluating and delivering (:mod:`~obskit.alerts.engine`, which builds everything declared
here in its ``__init__``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from obskit.alerts.actions import AlertActions
from obskit.alerts.history import History
from obskit.alerts.manual import ManualAlerts
from obskit.alerts.notify import Channel, Dispatcher, Notification
from obskit.alerts.publish import Publisher
from obskit.alerts.routing import Router
from obskit.alerts.slo import SLO
from obskit.alerts.state import AlertInstance, RuleState
from obskit.alerts.store import MetricStore
from obskit.signals import Alert

__all__ = ["EngineParts"]


class EngineParts:
    """The engine's state, as its parts see it (``AlertEngine.__init__`` sets it all)."""

    clock: Callable[[], float]
    evaluation_interval_s: float | None
    window_buckets: int
    window_resolution_s: float | None
    relative_accuracy: float
    default_channels: tuple[str, ...]
    store: MetricStore
    channels: dict[str, Channel]
    router: Router
    dispatcher: Dispatcher
    actions: AlertActions
    _rules: dict[str, RuleState]
    _manual: ManualAlerts
    _slos: dict[str, tuple[SLO, RuleState]]
    _external: dict[str, str]
    _lock: threading.RLock
    _history: History
    _publisher: Publisher

    if TYPE_CHECKING:

        def start(self) -> None: ...

        def _refresh_identity(self) -> None: ...

        def _transition(
            self, instance: AlertInstance, now: float, *, route: bool = True
        ) -> Alert: ...

        def _snapshot(self, instance: AlertInstance, now: float) -> Alert: ...

        def _tick(self, now: float) -> list[Notification]: ...

        def _send(self, notifications: list[Notification]) -> None: ...
