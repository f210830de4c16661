"""``obskit.alerts``: alert rules over metrics, evaluated in-process, routed to channels.

The same semantics as Prometheus alerting rules plus Alertmanager, with no server: rules over
sliding windows of ``obskit.metrics`` series, the pending/firing/resolved state machine with
``for`` and ``keep_firing_for``, grouping, repeat, silences, inhibition, escalation and
acknowledgement, and channels (log, webhook, Slack, PagerDuty, email, Alertmanager, Microsoft
Teams, SMS through Twilio, Opsgenie). Beyond Prometheus: alerts raised by hand
(``trigger`` / ``resolve_manual``, routed the same way), rules that act (``on_fire`` /
``on_resolve`` actions with a timeout and a rate limit), escalation by severity and on
recurrence, and notifications that carry the actions' outcomes, the running release, the error
groups that rose in the alert's window and exemplar traces. See ``docs/alerts.md``.

The module-level functions use a default engine, wired to ``obskit.metrics`` when this module
is imported and evaluating every 15 seconds once it has a rule::

    import obskit
    obskit.alerts.add_channel("pager", obskit.alerts.PagerDutyChannel(routing_key=KEY))
    obskit.alerts.add_rule(name="high_error_rate", metric="http.server.request.duration",
                           matchers=['error.type=~".+"'], aggregation="count", window_s=300,
                           op=">", threshold=150, for_s=60, severity="critical",
                           channels=["pager"])   # more than 0.5 failed requests a second

(``rate`` of a histogram is the sum of its values per second, ``rate(m_sum[w])``: seconds
of latency per second for a duration; count the requests with ``count``.)

``AlertEngine(...)`` makes an independent engine (its own series, rules and channels, fed by
``engine.observe``, or by ``obskit.metrics`` after ``obskit.metrics.add_sink(engine.store)``).
``configure(**options)`` replaces the default engine with one built from ``options``.

Past one process, the same rules and routing move to Prometheus and Alertmanager:
``export_prometheus_rules()`` and ``export_alertmanager_config()`` (``obskit export
prometheus-rules`` / ``alertmanager-config``), ratio rules and ``slo(...)`` burn-rate alerts
included; ``AlertmanagerChannel`` sends a process's alerts to Alertmanager as Prometheus does.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from obskit import _runtime, metrics
from obskit._actions import Action, ActionRun
from obskit.alerts.alertmanager import AlertmanagerChannel
from obskit.alerts.channels import (
    EmailChannel,
    LogChannel,
    PagerDutyChannel,
    SlackChannel,
    WebhookChannel,
)
from obskit.alerts.engine import AlertEngine
from obskit.alerts.engine import _live as _live_engines
from obskit.alerts.export import Export
from obskit.alerts.matchers import Matcher, parse_matchers
from obskit.alerts.notify import Channel, ChannelError, Notification
from obskit.alerts.opsgenie import OpsgenieChannel
from obskit.alerts.policies import EscalationLevel, EscalationPolicy, InhibitRule, Silence
from obskit.alerts.rules import AlertRule, Detector, DetectorResult, RuleError
from obskit.alerts.sketch import QuantileSketch
from obskit.alerts.slo import SLO
from obskit.alerts.teams import TeamsChannel
from obskit.alerts.twilio import TwilioSMSChannel
from obskit.diagnostics import ConfigError
from obskit.signals import Alert

__all__ = [
    "SLO",
    "Action",
    "ActionRun",
    "Alert",
    "AlertEngine",
    "AlertRule",
    "AlertmanagerChannel",
    "Channel",
    "ChannelError",
    "Detector",
    "DetectorResult",
    "EmailChannel",
    "EscalationLevel",
    "EscalationPolicy",
    "Export",
    "InhibitRule",
    "LogChannel",
    "Matcher",
    "Notification",
    "OpsgenieChannel",
    "PagerDutyChannel",
    "QuantileSketch",
    "RuleError",
    "Silence",
    "SlackChannel",
    "TeamsChannel",
    "TwilioSMSChannel",
    "WebhookChannel",
    "acknowledge",
    "active",
    "add_channel",
    "add_escalation_policy",
    "add_inhibit_rule",
    "add_rule",
    "configure",
    "default_engine",
    "evaluate",
    "expire_silence",
    "export_alertmanager_config",
    "export_prometheus_rules",
    "flush",
    "history",
    "load_rules",
    "parse_matchers",
    "remove_rule",
    "reset",
    "resolve",
    "resolve_manual",
    "rules",
    "silence",
    "silences",
    "slo",
    "slo_status",
    "source_engine",
    "stats",
    "trigger",
]

#: Options of the default engine (``configure`` overrides them).
DEFAULT_OPTIONS: dict[str, Any] = {"evaluation_interval_s": 15.0}

_lock = threading.Lock()
_engine: AlertEngine | None = None


def default_engine() -> AlertEngine:
    """The engine behind the module-level functions (created on first use)."""
    engine = _engine
    if engine is None:
        engine = configure()
    return engine


def configure(**options: Any) -> AlertEngine:
    """Replace the default engine with ``AlertEngine(**{**DEFAULT_OPTIONS, **options})``.

    The previous engine stops (what it had queued is delivered) and leaves ``obskit.metrics``;
    its rules, channels and series are not carried over.
    """
    global _engine
    engine = AlertEngine(**{**DEFAULT_OPTIONS, **options})
    with _lock:
        previous, _engine = _engine, engine
    if previous is not None:
        metrics.remove_sink(previous.store)
        previous.close(timeout_s=2.0)
    metrics.add_sink(engine.store)
    return engine


@_runtime.shutdown_listeners.add
def _shutdown(timeout_s: float = 2.0) -> None:
    """``obskit.shutdown``: stop every engine's evaluator, deliver what each has queued."""
    reset()
    for engine in list(_live_engines):
        engine.close(timeout_s)


def reset() -> None:
    """Forget the default engine (tests); the next use makes a fresh one."""
    global _engine
    with _lock:
        previous, _engine = _engine, None
    if previous is not None:
        metrics.remove_sink(previous.store)
        previous.close(timeout_s=2.0)


def add_rule(rule: AlertRule | dict[str, Any] | None = None, /, **fields: Any) -> AlertRule:
    """Add a rule to the default engine. See :meth:`AlertEngine.add_rule`."""
    return default_engine().add_rule(rule, **fields)


def remove_rule(name: str) -> list[Alert]:
    return default_engine().remove_rule(name)


def rules() -> list[AlertRule]:
    return default_engine().rules()


def load_rules(source: str | Path | dict[str, Any] | list[Any]) -> list[AlertRule]:
    """Load a YAML/JSON rule file (or data) into the default engine; all or nothing."""
    return default_engine().load_rules(source)


def slo(name: str | SLO, /, **fields: Any) -> SLO:
    """Add a service level objective to the default engine: ``slo("checkout", good=...,
    total=..., objective=0.999, window_s="30d")``; burn-rate alerts (14.4x over 1 h and 5 min,
    6x over 6 h and 30 min) and its error budget. See :class:`SLO`."""
    if isinstance(name, SLO):
        return default_engine().add_slo(name, **fields)
    return default_engine().add_slo(name=name, **fields)


def slo_status(name: str) -> list[dict[str, Any]]:
    """Good ratio and error budget remaining of an SLO of the default engine."""
    return default_engine().slo_status(name)


def add_channel(name: str, channel: Channel) -> None:
    default_engine().add_channel(name, channel)


def add_inhibit_rule(rule: InhibitRule | None = None, /, **fields: Any) -> InhibitRule:
    return default_engine().add_inhibit_rule(rule, **fields)


def add_escalation_policy(
    policy: EscalationPolicy | None = None, /, **fields: Any
) -> EscalationPolicy:
    return default_engine().add_escalation_policy(policy, **fields)


def evaluate(now: float | None = None) -> list[Alert]:
    """Evaluate the default engine's rules now; the state changes."""
    return default_engine().evaluate(now)


def active() -> list[Alert]:
    return default_engine().active()


def silence(matchers: Any, **options: Any) -> Silence:
    return default_engine().silence(matchers, **options)


def expire_silence(silence_id: str) -> None:
    default_engine().expire_silence(silence_id)


def silences() -> list[Silence]:
    return default_engine().silences()


def acknowledge(alert: Alert | str, *, by: str = "", comment: str = "") -> Alert | None:
    return default_engine().acknowledge(alert, by=by, comment=comment)


def resolve(alert: Alert | str, *, by: str = "", comment: str = "") -> Alert | None:
    return default_engine().resolve(alert, by=by, comment=comment)


def trigger(name: str, /, **options: Any) -> Alert:
    """Raise an alert by hand on the default engine: ``trigger("payments_down",
    severity="critical", summary="provider answers 502", labels={"provider": "acme"},
    dedup_key="payments-acme")``. See :meth:`AlertEngine.trigger` and ``docs/alerts.md``."""
    return default_engine().trigger(name, **options)


def resolve_manual(key: str, /, **options: Any) -> list[Alert]:
    """Resolve manual alerts of the default engine by dedup key, fingerprint or name. See
    :meth:`AlertEngine.resolve_manual`."""
    return default_engine().resolve_manual(key, **options)


def export_prometheus_rules(**options: Any) -> Export:
    """The default engine's rules as a Prometheus rule file. See
    :meth:`AlertEngine.export_prometheus_rules`."""
    return default_engine().export_prometheus_rules(**options)


def export_alertmanager_config(**options: Any) -> Export:
    """The default engine's routing as an Alertmanager configuration. See
    :meth:`AlertEngine.export_alertmanager_config`."""
    return default_engine().export_alertmanager_config(**options)


def source_engine(source: str | Path) -> AlertEngine:
    """The engine a rule file or a Python set-up file describes (what ``obskit export`` reads).

    A ``.py`` file runs (as a script named ``__obskit_export__``); its engine is the
    :class:`AlertEngine` it assigned at top level (or the default engine). A rule file
    (``.yaml``, ``.yml``, ``.json``) loads into a new engine, whatever channels it names.
    """
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"no such file: {str(path)!r}")
    if path.suffix != ".py":
        engine = AlertEngine(evaluation_interval_s=None)
        engine.load_rules(path, check_channels=False)
        return engine
    import runpy

    namespace = runpy.run_path(str(path), run_name="__obskit_export__")
    engines = [value for value in namespace.values() if isinstance(value, AlertEngine)]
    if len(engines) > 1:
        raise ConfigError(f"{path.name} assigns {len(engines)} AlertEngines; export one per file")
    return engines[0] if engines else default_engine()


def history(limit: int | None = None) -> list[dict[str, Any]]:
    return default_engine().history(limit)


def stats() -> dict[str, Any]:
    return default_engine().stats()


def flush(timeout_s: float = 5.0) -> bool:
    return default_engine().flush(timeout_s)


default_engine()
