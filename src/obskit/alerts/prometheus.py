"""Rules as a Prometheus rule file: the same alerts, evaluated by Prometheus over every replica.

The export reads each metric's **declared** kind (``obskit.metrics.counter`` / ``histogram``
/ ``gauge`` / ``up_down_counter``, with their unit and buckets), never the traffic seen so far,
so the file is the same before and after the first request. Names are the Prometheus names of
the declared instruments (``http.server.request.duration`` in seconds is
``http_server_request_duration_seconds``); label names are sanitised as OpenTelemetry does.

How obskit's window aggregations read in PromQL (``m`` the metric, ``w`` the window):

* counter (obskit sees each increment): ``rate`` -> ``rate(m_total[w])``, ``sum`` ->
  ``increase(m_total[w])``.
* histogram (obskit sees each observation): ``rate`` (sum per second) ->
  ``rate(m_sum[w])``, ``sum`` -> ``increase(m_sum[w])``, ``count`` -> ``increase(m_count[w])``,
  ``avg`` -> ``rate(m_sum[w]) / rate(m_count[w])``, ``p50``..``p99`` ->
  ``histogram_quantile(q, rate(m_bucket[w]))``; obskit's engine reads those percentiles from the
  same buckets, so both answer alike.
* gauge: ``avg``, ``min``, ``max``, ``last``, ``sum``, ``count`` -> ``<agg>_over_time(m[w])``,
  percentiles -> ``quantile_over_time``.
* up_down_counter (obskit sees each change): ``sum`` -> ``delta(m[w])``.

``aggregate_by`` wraps each in ``sum by (...)`` (``max``/``min`` by for gauges; histogram
quantiles aggregate their buckets ``by (..., le)``), ratio rules (``denominator``) divide the
two sides and are written as a recording rule plus an alerting rule, a short window adds
``and`` its own condition, SLOs become recording rules of their error ratio per window (and of
the error budget remaining) with the page and ticket burn-rate alerts over them, and a
detector rule with a ``threshold`` becomes a rule over its published ``<metric>_anomaly_score``
series. Everything else that has no PromQL equivalent is skipped with its reason in the
export's report (``strict=True`` refuses instead): a detector without threshold or without a
published score, ``resolve_threshold`` (Prometheus has no hysteresis), a no-data policy other
than ``ok``, ``{{ score }}`` outside detector rules, an aggregation a kind does not keep (the
``max`` of a histogram), a metric that is not declared.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from obskit.alerts.export import Export, yaml_text
from obskit.alerts.rules import AlertRule, Template
from obskit.alerts.slo import BURN_RATES, SLO
from obskit.alerts.window import PERCENTILES
from obskit.metrics import label_name

__all__ = [
    "MetricKind",
    "label_names",
    "prometheus_duration",
    "prometheus_rules",
]


@dataclass(frozen=True, slots=True)
class MetricKind:
    """What the export needs of a declared metric: its kind, Prometheus name and buckets."""

    kind: str
    prometheus_name: str
    bounds: tuple[float, ...] = ()


class Skip(Exception):
    """This rule has no PromQL equivalent (the message says why)."""


def label_names(labels: Mapping[str, str]) -> dict[str, str]:
    """``labels`` with sanitised names; values of names that collide are joined with ``;``
    (in the order of the original names), as OpenTelemetry's Prometheus translation does.

    >>> label_names({"team.name": "a", "team_name": "b", "route": "/"})
    {'route': '/', 'team_name': 'a;b'}
    """
    if all(label_name(k) == k for k in labels):
        return dict(labels)
    out: dict[str, str] = {}
    for key in sorted(labels):
        name = label_name(key)
        out[name] = f"{out[name]};{labels[key]}" if name in out else labels[key]
    return out


def prometheus_rules(
    rules: Iterable[AlertRule],
    *,
    metrics: Mapping[str, MetricKind],
    slos: Iterable[SLO] = (),
    group: str = "obskit",
    interval_s: float | None = None,
) -> Export:
    """A Prometheus rule file (recording and alerting rules), and what was skipped."""
    slos = list(slos)
    from_slos = {rule.name for slo in slos for rule in slo.rules()}
    writer = _Writer(metrics)
    skipped: list[tuple[str, str]] = []
    notes: list[str] = []
    for slo in slos:
        try:
            writer.slo(slo)
        except Skip as why:
            skipped.append((f"slo {slo.name!r}", str(why)))
    for rule in rules:
        if rule.name in from_slos:
            continue
        try:
            writer.rule(rule)
        except Skip as why:
            skipped.append((f"rule {rule.name!r}", str(why)))
            continue
        hooks = [name for name in ("on_fire", "on_resolve") if getattr(rule, name) is not None]
        if hooks:  # the rule moves; its actions cannot
            notes.append(
                f"rule {rule.name!r}: {' and '.join(hooks)} run in this process only; point an "
                "Alertmanager webhook_config at code that does the same"
            )
    group_data: dict[str, Any] = {"name": group}
    if interval_s is not None:
        group_data["interval"] = prometheus_duration(interval_s)
    group_data["rules"] = writer.records + writer.alerts
    return Export(yaml_text({"groups": [group_data]}), skipped, notes)


class _Writer:
    def __init__(self, metrics: Mapping[str, MetricKind]) -> None:
        self.metrics = metrics
        self.records: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        self._recorded: dict[str, str] = {}  # name -> expr

    def rule(self, rule: AlertRule) -> None:
        """Write one rule (raise Skip when it has no equivalent)."""
        unsupported = [
            field
            for field, used in (
                ("resolve_threshold", rule.resolve_threshold is not None),
                ("no_data", rule.no_data != "ok"),
            )
            if used
        ]
        if unsupported:
            raise Skip(
                f"Prometheus has no equivalent of {', '.join(unsupported)} (no hysteresis: "
                "prometheus#10536; absent series resolve); drop the field to export the rule"
            )
        if rule.detector is not None:
            self.alerts.append(self._detector_rule(rule))
            return
        assert rule.threshold is not None
        condition = f"{self._value(rule, rule.window_s)} {rule.op} {_number(rule.threshold)}"
        if rule.short_window_s is not None:
            short = self._value(rule, rule.short_window_s)
            condition = f"({condition}) and ({short} {rule.op} {_number(rule.threshold)})"
        self.alerts.append(self._alert(rule, condition))

    def _value(self, rule: AlertRule, window_s: float) -> str:
        """The rule's value over ``window_s``: an expression, or a recorded series (ratios)."""
        numerator = self._form(rule, rule.metric, window_s)
        if rule.denominator is None:
            return numerator
        denominator = self._form(rule, rule.denominator, window_s)
        level = "_".join(label_name(n) for n in rule.aggregate_by or ())
        name = (
            (f"{level}:" if level else "")
            + f"{_metric_word(rule.metric)}_per_{_metric_word(rule.denominator)}:"
            f"{rule.aggregation}_ratio{prometheus_duration(window_s)}"
        )
        return self._record(name, f"{numerator}\n/\n{denominator}")

    def _record(self, name: str, expr: str, labels: Mapping[str, str] | None = None) -> str:
        key = name + json.dumps(labels or {}, sort_keys=True)
        unique, number = name, 1
        while unique in self._recorded and self._recorded[unique] != key + expr:
            number += 1
            unique = f"{name}_{number}"
        if unique not in self._recorded:
            self._recorded[unique] = key + expr
            record: dict[str, Any] = {"record": unique, "expr": expr}
            if labels:
                record["labels"] = dict(labels)
            self.records.append(record)
        if labels:
            return unique + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
        return unique

    def _form(self, rule: AlertRule, metric: str, window_s: float) -> str:
        declared = self.metrics.get(metric)
        if declared is None:
            raise Skip(
                f"metric {metric!r} is not declared (obskit.metrics.counter/histogram/gauge/"
                "up_down_counter): the export reads declared kinds, never traffic"
            )
        aggregation, by = rule.aggregation, rule.aggregate_by
        window = prometheus_duration(window_s)
        name, kind = declared.prometheus_name, declared.kind

        def series(suffix: str = "") -> str:
            return f"{_selector(rule, name + suffix)}[{window}]"

        def summed(expr: str, how: str = "sum") -> str:
            if by is None:
                return expr
            clause = f" by ({', '.join(label_name(n) for n in by)})" if by else ""
            return f"{how}{clause} ({expr})"

        quantile = PERCENTILES.get(aggregation)
        if kind == "counter":
            forms = {
                "rate": summed(f"rate({series()})"),
                "sum": summed(f"increase({series()})"),
            }
        elif kind == "histogram":
            sums, counts = series("_sum"), series("_count")
            forms = {
                "rate": summed(f"rate({sums})"),
                "sum": summed(f"increase({sums})"),
                "count": summed(f"increase({counts})"),
                "avg": f"({summed(f'rate({sums})')} / {summed(f'rate({counts})')})",
            }
            if quantile is not None:
                labels = ", ".join([*(label_name(n) for n in by or ()), "le"])
                buckets = f"rate({series('_bucket')})"
                if by is not None:
                    buckets = f"sum by ({labels}) ({buckets})"
                forms[aggregation] = f"histogram_quantile({quantile}, {buckets})"
        elif kind == "gauge":
            how = {"min": "min", "max": "max", "avg": "avg"}
            forms = {
                name_: summed(f"{name_}_over_time({series()})", how.get(name_, "sum"))
                for name_ in ("avg", "sum", "min", "max", "count")
            }
            if by is None:
                forms["last"] = f"last_over_time({series()})"
                if quantile is not None:
                    forms[aggregation] = f"quantile_over_time({quantile}, {series()})"
        elif kind == "up_down_counter":
            forms = {"sum": summed(f"delta({series()})")}
        else:
            raise Skip(f"metric {metric!r} has kind {kind!r}, which the export does not know")
        if aggregation not in forms:
            keeps = ", ".join(sorted(forms))
            raise Skip(
                f"{aggregation!r} of a {kind} has no PromQL equivalent"
                + (" across series" if by is not None else "")
                + f" (a {kind} keeps: {keeps})"
            )
        return forms[aggregation]

    def _detector_rule(self, rule: AlertRule) -> dict[str, Any]:
        if rule.threshold is None:
            raise Skip(
                "a detector without threshold decides by itself; give threshold= (on its "
                "score) to export it over the published anomaly score"
            )
        score_metric = f"{rule.metric}.anomaly_score"
        declared = self.metrics.get(score_metric)
        if declared is None:
            raise Skip(
                f"no published anomaly score series {score_metric!r} to compare with the "
                "threshold (the detector runs in-process only)"
            )
        if declared.kind != "gauge":  # what anomaly.watch(publish_score=True) declares
            raise Skip(f"the anomaly score {score_metric!r} is a {declared.kind}, not a gauge")
        expr = f"{_selector(rule, declared.prometheus_name)} {rule.op} {_number(rule.threshold)}"
        return self._alert(rule, expr, score="{{ $value }}")

    def _alert(self, rule: AlertRule, expr: str, *, score: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"alert": rule.name, "expr": expr}
        if rule.for_s:
            out["for"] = prometheus_duration(rule.for_s)
        if rule.keep_firing_for_s:
            out["keep_firing_for"] = prometheus_duration(rule.keep_firing_for_s)
        labels = {label_name(k): _template(v, rule, score) for k, v in rule.labels.items()}
        out["labels"] = {**labels, "severity": rule.severity}
        if rule.annotations:
            out["annotations"] = {
                label_name(k): _template(v, rule, score) for k, v in rule.annotations.items()
            }
        return out

    def slo(self, slo: SLO) -> None:
        """Recording rules of the error ratio per window, the budget, and the burn alerts."""
        rules = slo.rules()
        ratio = {}
        windows = sorted({w for r in rules for w in (r.window_s, r.short_window_s) if w})
        for window_s in [*windows, slo.window_s]:
            good = self._form(rules[0], slo.good, window_s)
            total = self._form(rules[0], slo.total, window_s)
            name = f"slo:sli_error:ratio_rate{prometheus_duration(window_s)}"
            ratio[window_s] = self._record(name, f"1 - (\n{good}\n/\n{total}\n)", {"slo": slo.name})
        self._record(
            "slo:error_budget_remaining:ratio",
            f"1 - {ratio[slo.window_s]} / {_number(slo.error_budget)}",
            {"slo": slo.name},
        )
        for rule, (_, burn, long_s, short_s) in zip(rules, BURN_RATES, strict=True):
            limit = _number(burn * slo.error_budget)
            expr = f"{ratio[long_s]} > {limit}\nand\n{ratio[short_s]} > {limit}"
            alert = self._alert(rule.model_copy(update={"annotations": {}}), expr)
            alert["annotations"] = {
                "summary": rule.annotations["summary"],
                "description": f"error ratio {{{{ $value }}}} over {long_s / 3600:g}h "
                f"(and over {short_s / 60:g}m) is above {limit}",
            }
            self.alerts.append(alert)


def _metric_word(metric: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]+", "_", metric).strip("_")


def _number(value: float) -> str:
    """A threshold as PromQL reads it (12 significant digits: 14.4 * 0.001 is 0.0144)."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.12g}"


def _selector(rule: AlertRule, name: str) -> str:
    parts = [f"{label_name(m.name)}{m.op}{json.dumps(m.value)}" for m in rule.matchers]
    return f"{name}{{{','.join(parts)}}}" if parts else name


def _template(text: str, rule: AlertRule, score: str | None) -> str:
    """An obskit template in Prometheus' template language."""
    literal = {
        "threshold": _number(rule.threshold) if rule.threshold is not None else "",
        "metric": rule.metric,
        "severity": rule.severity,
        "aggregation": rule.aggregation,
        "window_s": f"{rule.window_s:g}",
    }
    if score is not None:
        literal["score"] = score
    out = []
    for part in Template(text).parts:
        if isinstance(part, str):
            out.append(part)
        elif part[0] == "labels":
            out.append(f"{{{{ $labels.{label_name(part[1] or '')} }}}}")
        elif part[0] == "value":
            out.append("{{ $value }}")
        elif part[0] == "rule":
            out.append("{{ $labels.alertname }}")
        elif part[0] in literal:
            out.append(literal[part[0]])
        else:
            raise Skip(
                f"{{{{ {part[0]} }}}} has no Prometheus equivalent outside a detector rule "
                "over its published score"
            )
    return "".join(out)


def prometheus_duration(seconds: float) -> str:
    """Seconds as a Prometheus duration: ``5m``, ``90s``, ``1h30m``, ``250ms``.

    >>> prometheus_duration(5400), prometheus_duration(0.25), prometheus_duration(30 * 86400)
    ('1h30m', '250ms', '30d')
    """
    milliseconds = round(seconds * 1000)
    if milliseconds % 1000:
        return f"{milliseconds}ms"
    whole, out = milliseconds // 1000, ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            out += f"{whole // size}{unit}"
            whole %= size
    return out or "0s"
