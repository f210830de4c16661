"""The state machine of one rule's alerts, as Prometheus runs it (``rules/alerting.go``).

Each evaluation, for each selected series (one alert instance per label set):

* condition true, no instance: a new instance, **pending**, active since now;
* pending, and true for ``for_s`` (``now - active_since >= for_s``): **firing**
  (with ``for_s = 0`` it fires in the evaluation that created it, reported once as firing);
* condition false while pending: the instance is dropped silently (it never fired);
* condition false while firing: with ``keep_firing_for_s``, it keeps firing until the condition
  has been false for that long (a true evaluation restarts that clock); then **resolved**.

Additions to Prometheus, all opt-in: ``resolve_threshold`` (hysteresis: an active instance
stays active until the value crosses the resolve threshold, so a value hovering at the
threshold does not flap), and a no-data policy for series whose window holds no points (or
when no series matches at all): ``ok`` (the condition is false, as in Prometheus),
``alerting`` (it is true) or ``keep_state`` (nothing changes, timers included).

Windows that are empty give no data for avg, min, max, last and percentiles; count, sum and
rate of an existing series are 0, as for a Prometheus counter that did not move.
"""

from __future__ import annotations

import copy
import hashlib
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from obskit import diagnostics
from obskit.alerts.rules import AlertRule, ManualRule, Template, compare
from obskit.alerts.store import MetricStore, Series, WindowSpec
from obskit.alerts.window import _READERS, Ring, read_rings

__all__ = ["AlertInstance", "RuleState", "fingerprint_of"]

_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": lambda value, threshold: compare("==", value, threshold),
    "!=": lambda value, threshold: compare("!=", value, threshold),
}

Reader = Callable[[Ring, Sequence[int] | None], float | None]


def fingerprint_of(labels: dict[str, str]) -> str:
    """A stable id of a label set (16 hex digits), the same in every process.

    >>> fingerprint_of({"alertname": "high_error_rate", "route": "/cart"})
    'd96408fae31fcbd9'
    """
    text = "\xff".join(f"{k}\xfe{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(slots=True)
class AlertInstance:
    """The live state of one rule on one label set (or of one alert raised by hand)."""

    rule: AlertRule | ManualRule
    fingerprint: str
    labels: dict[str, str]
    state: str
    active_at: float
    value: float | None = None
    score: float | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    fired_at: float | None = None
    resolved_at: float | None = None
    keep_firing_since: float | None = None
    last_evaluated: float = 0.0
    acknowledged_at: float | None = None
    acknowledged_by: str = ""
    acknowledged_comment: str = ""
    resolved_by: str = ""
    resolved_comment: str = ""
    #: Set by escalation: the severity it was raised to, and why it was escalated.
    severity: str | None = None
    escalated: str = ""


class RuleState:
    """One rule, its windows on the store, and its alert instances."""

    def __init__(
        self,
        rule: AlertRule,
        spec: WindowSpec,
        store: MetricStore,
        short_spec: WindowSpec | None = None,
    ) -> None:
        self.rule = rule
        self.spec = spec
        self.short_spec = short_spec
        self.store = store
        self._vetoed: set[str] = set()
        self._keyed: dict[str, tuple[int, list[tuple[Series, tuple[tuple[str, str], ...]]]]] = {}
        self._group_labels: dict[tuple[tuple[str, str], ...], tuple[str, dict[str, str]]] = {}
        self.instances: dict[str, AlertInstance] = {}
        self.last_evaluation: float | None = None
        self.reader: Reader = _READERS[rule.aggregation]
        self.templates = {k: Template(v) for k, v in rule.annotations.items()}
        self.label_templates = {k: Template(v) for k, v in rule.labels.items()}
        self.detectors: dict[str, Any] = {}
        self.external_labels: dict[str, str] = {}
        self._selection: tuple[int, list[tuple[Series, str, dict[str, str]]]] = (-1, [])
        self._no_series = self._no_series_labels()

    @property
    def watches(self) -> list[tuple[str, WindowSpec]]:
        """(metric, window shape) pairs the store must keep for this rule."""
        specs = [self.spec] if self.short_spec is None else [self.spec, self.short_spec]
        return [(metric, spec) for metric in self.rule.metrics for spec in specs]

    def set_external_labels(self, labels: dict[str, str]) -> None:
        """Labels every alert of this rule carries (under its series' and rule's labels)."""
        self.external_labels = labels
        self._selection = (-1, [])
        self._group_labels.clear()
        self._no_series = self._no_series_labels()

    def _no_series_labels(self) -> dict[str, str]:
        kept = self.rule.aggregate_by
        return self._alert_labels(
            {
                m.name: m.value
                for m in self.rule.matchers
                if m.is_equality and (kept is None or m.name in kept)
            }
        )

    # -- evaluation ----------------------------------------------------------------------------

    def evaluate(self, now: float) -> list[AlertInstance]:
        """Run one evaluation at ``now``; the instances whose state changed."""
        rule = self.rule
        self.last_evaluation = now
        selected, readings = self._read(now)
        if not selected and rule.no_data == "alerting":
            labels = self._no_series
            readings = [(fingerprint_of(labels), labels, None)]
        elif not selected and rule.no_data == "keep_state":
            return []
        changed: list[AlertInstance] = []
        held: set[str] = set()  # condition true (or frozen): not resolving this time
        for fingerprint, labels, value in readings:
            instance = self.instances.get(fingerprint)
            condition, score = self._condition(fingerprint, instance, value, now)
            if condition is None:  # keep_state on no data: frozen
                held.add(fingerprint)
                continue
            if condition and fingerprint in self._vetoed:  # the short window disagrees
                condition = False
            if instance is not None:
                instance.value, instance.score = value, score
                instance.last_evaluated = now
            if not condition:
                continue
            held.add(fingerprint)
            if instance is None:
                instance = AlertInstance(rule, fingerprint, labels, "pending", now, value, score)
                instance.last_evaluated = now
                self.instances[fingerprint] = instance
                fresh = True
            else:
                fresh = False
            instance.keep_firing_since = None
            if instance.state == "pending" and now - instance.active_at >= rule.for_s:
                instance.state = "firing"
                instance.fired_at = now
                changed.append(instance)
            elif fresh:
                changed.append(instance)
            self._annotate(instance)
        for fingerprint, instance in list(self.instances.items()):
            if fingerprint in held:
                continue
            if instance.state == "pending":
                del self.instances[fingerprint]
                continue
            if rule.keep_firing_for_s > 0:
                if instance.keep_firing_since is None:
                    instance.keep_firing_since = now
                if now - instance.keep_firing_since < rule.keep_firing_for_s:
                    continue
            self._resolve(instance, now)
            changed.append(instance)
        return changed

    def resolve(
        self, fingerprint: str, now: float, by: str = "", comment: str = ""
    ) -> AlertInstance | None:
        """End an instance by hand (who and why); it may start again at the next evaluation."""
        instance = self.instances.get(fingerprint)
        if instance is None:
            return None
        instance.resolved_by, instance.resolved_comment = by, comment
        self._resolve(instance, now)
        return instance

    def _resolve(self, instance: AlertInstance, now: float) -> None:
        instance.state = "resolved"
        instance.resolved_at = now
        del self.instances[instance.fingerprint]
        self._annotate(instance)

    def _condition(
        self, fingerprint: str, instance: AlertInstance | None, value: float | None, now: float
    ) -> tuple[bool | None, float | None]:
        """Whether the condition holds (``None``: frozen by keep_state), and the anomaly score."""
        rule = self.rule
        if value is None:
            policy = rule.no_data
            return (None if policy == "keep_state" else policy == "alerting"), None
        active = instance is not None
        threshold = rule.threshold
        if active and rule.resolve_threshold is not None:
            threshold = rule.resolve_threshold
        if rule.detector is None:
            assert threshold is not None
            return compare(rule.op, value, threshold), None
        try:
            result = self._detector(fingerprint).update(value, timestamp=now)
            score = float(result.score)
            if threshold is None:
                return bool(result.is_anomaly), score
            return compare(rule.op, score, threshold), score
        except Exception as exc:
            diagnostics.report(
                f"alerts.detector.{rule.name}", f"rule {rule.name!r}: detector raised {exc!r}"
            )
            return False, None

    def _detector(self, fingerprint: str) -> Any:
        detector = self.detectors.get(fingerprint)
        if detector is None:
            prototype = self.rule.detector
            if hasattr(prototype, "update") and not isinstance(prototype, type):
                detector = copy.deepcopy(prototype)
            else:
                detector = prototype()
            self.detectors[fingerprint] = detector
        return detector

    def _read(self, now: float) -> tuple[int, list[tuple[str, dict[str, str], float | None]]]:
        """How many series the rule selects, and (fingerprint, alert labels, window value) of
        those that can change state: without a detector, a series with no alert whose
        condition is false is left out here (the common case, kept cheap)."""
        rule = self.rule
        if not rule.is_simple:
            return self._read_aggregated(now)
        metric = self.store.metrics.get(rule.metric)
        if metric is None:
            return 0, []
        reader, instances = self.reader, self.instances
        test = _TESTS[rule.op] if rule.detector is None else None
        threshold = rule.threshold
        alerting_on_no_data = rule.no_data != "ok"
        current = int(now // self.spec.width)
        readings: list[tuple[str, dict[str, str], float | None]] = []
        with metric.lock:
            try:
                index = metric.specs.index(self.spec)
            except ValueError:
                return 0, []
            if self._selection[0] != metric.version:
                self._select(metric.version, metric.series)
            selection = self._selection[1]
            for series, fingerprint, labels in selection:
                ring = series.rings[index]
                value = reader(ring, None if ring.head == current else ring.slots(now))
                if test is not None and fingerprint not in instances:
                    if value is None:
                        if not alerting_on_no_data:
                            continue
                    elif not test(value, threshold):
                        continue
                readings.append((fingerprint, labels, value))
        return len(selection), readings

    def _read_aggregated(
        self, now: float
    ) -> tuple[int, list[tuple[str, dict[str, str], float | None]]]:
        """The general path: label sets aggregated (``aggregate_by``), ratios (``denominator``)
        and a second, shorter window (``short_window_s``) that must agree."""
        rule = self.rule
        values = self._values(self.spec, now)
        short = self._values(self.short_spec, now) if self.short_spec is not None else None
        readings = []
        vetoed: set[str] = set()
        for key, value in values.items():
            known = self._group_labels.get(key)
            if known is None:
                labels = self._alert_labels(dict(key))
                known = self._group_labels[key] = (fingerprint_of(labels), labels)
            fingerprint, labels = known
            if short is not None and rule.threshold is not None:
                short_value = short.get(key)
                if short_value is None or not compare(rule.op, short_value, rule.threshold):
                    vetoed.add(fingerprint)
            readings.append((fingerprint, labels, value))
        self._vetoed = vetoed
        if len(self._group_labels) > 4 * len(values) + 64:  # forget groups long gone
            self._group_labels = {k: v for k, v in self._group_labels.items() if k in values}
        return len(values), readings

    def _values(
        self, spec: WindowSpec, now: float
    ) -> dict[tuple[tuple[str, str], ...], float | None]:
        """The window value per label set (aggregated, and divided, as the rule says)."""
        rule = self.rule
        values = self._aggregate(rule.metric, spec, now)
        if rule.denominator is None:
            return values
        totals = self._aggregate(rule.denominator, spec, now)
        out: dict[tuple[tuple[str, str], ...], float | None] = {}
        for key, value in values.items():
            total = totals.get(key)
            out[key] = value / total if value is not None and total else None
        return out

    def _aggregate(
        self, name: str, spec: WindowSpec, now: float
    ) -> dict[tuple[tuple[str, str], ...], float | None]:
        metric = self.store.metrics.get(name)
        if metric is None:
            return {}
        groups: dict[tuple[tuple[str, str], ...], list[tuple[Ring, Sequence[int] | None]]] = {}
        with metric.lock:
            try:
                index = metric.specs.index(spec)
            except ValueError:
                return {}
            cached = self._keyed.get(name)
            if cached is None or cached[0] != metric.version:
                cached = self._keyed[name] = (metric.version, self._keys(metric.series))
            for series, key in cached[1]:
                ring = series.rings[index]
                found = groups.get(key)
                if found is None:
                    groups[key] = [(ring, ring.slots(now))]
                else:
                    found.append((ring, ring.slots(now)))
            return {key: read_rings(self.rule.aggregation, parts) for key, parts in groups.items()}

    def _keys(self, series: list[Series]) -> list[tuple[Series, tuple[tuple[str, str], ...]]]:
        """The selected series of a metric, each with the label set it counts towards."""
        matchers, kept = self.rule.matchers, self.rule.aggregate_by
        out = []
        for one in series:
            labels = one.labels
            if not all(m.matches(labels) for m in matchers):
                continue
            if kept is None:
                out.append((one, one.key))
            else:
                out.append((one, tuple((n, labels[n]) for n in kept if labels.get(n, "") != "")))
        return out

    def _select(self, version: int, series: list[Series]) -> None:
        matchers = self.rule.matchers
        chosen = []
        for one in series:
            if all(m.matches(one.labels) for m in matchers):
                labels = self._alert_labels(one.labels)
                chosen.append((one, fingerprint_of(labels), labels))
        self._selection = (version, chosen)

    def _alert_labels(self, series_labels: dict[str, str]) -> dict[str, str]:
        rule = self.rule
        context = {"labels": series_labels, "rule": rule.name, "metric": rule.metric}
        rendered = {k: t.render(context) for k, t in self.label_templates.items()}
        return {
            **self.external_labels,
            **series_labels,
            **rendered,
            "alertname": rule.name,
            "severity": rule.severity,
        }

    def _annotate(self, instance: AlertInstance) -> None:
        if not self.templates:
            return
        rule = self.rule
        context = {
            "value": instance.value,
            "threshold": rule.threshold,
            "labels": instance.labels,
            "rule": rule.name,
            "metric": rule.metric,
            "severity": rule.severity,
            "aggregation": rule.aggregation,
            "window_s": rule.window_s,
            "score": instance.score,
        }
        instance.annotations = {k: t.render(context) for k, t in self.templates.items()}
