"""Rules as Prometheus alerting rules: the same alerts, for a Prometheus server.

When the application's metrics also reach Prometheus (``obskit.metrics.OpenTelemetrySink`` and
an OpenTelemetry Prometheus exporter or collector), :func:`prometheus_rules` writes a rule file
with the same conditions. Names follow the OpenTelemetry-to-Prometheus conventions: dots become
underscores, a counter gains ``_total``, a histogram is read through ``_bucket``, ``_sum`` and
``_count``. How each aggregation is written depends on the metric's kind (``m`` the metric,
``w`` the window):

* counter (``increment``): rate ``rate(m_total[w])``, sum ``increase(m_total[w])``.
* histogram (``observe``, exported through OpenTelemetry): rate ``rate(m_count[w])``, sum
  ``increase(m_sum[w])``, count ``increase(m_count[w])``, avg
  ``rate(m_sum[w]) / rate(m_count[w])``, p50..p99 ``histogram_quantile(q, rate(m_bucket[w]))``.
* gauge: ``avg/sum/min/max/count/last_over_time(m[w])``, p50..p99
  ``quantile_over_time(q, m[w])``, rate ``sum_over_time(m[w]) / w``.

What Prometheus cannot say is refused (``ValueError`` naming the rule and the field) unless
``strict=False``, which drops it and says so in an ``obskit_dropped`` annotation: detectors,
``resolve_threshold``, a no-data policy other than ``ok``. Known differences that remain:
Prometheus' ``rate`` extrapolates to the window's edges where obskit's window slides by whole
buckets, and histogram quantiles come from the histogram's buckets, not from obskit's sketch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from obskit.alerts.export import Export, yaml_text
from obskit.alerts.rules import AlertRule, Template
from obskit.alerts.window import PERCENTILES

__all__ = [
    "label_name",
    "label_names",
    "prometheus_duration",
    "prometheus_rule",
    "prometheus_rules",
]

_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")


def label_name(name: str) -> str:
    """A label name Prometheus and Alertmanager accept, as OpenTelemetry translates them:
    other characters become ``_``, a leading digit gets ``key_``.

    >>> label_name("team.name"), label_name("http.route"), label_name("2xx")
    ('team_name', 'http_route', 'key_2xx')
    """
    sanitised = _INVALID_LABEL.sub("_", name)
    if sanitised[:1].isdigit():
        sanitised = "key_" + sanitised
    return sanitised or "_"


def label_names(labels: Mapping[str, str]) -> dict[str, str]:
    """``labels`` with sanitised names; values of names that collide are joined with ``;``
    (in the order of the original names), as OpenTelemetry's Prometheus translation does.

    >>> label_names({"team.name": "a", "team_name": "b", "route": "/"})
    {'route': '/', 'team_name': 'a;b'}
    """
    if all(_INVALID_LABEL.search(k) is None and not k[:1].isdigit() for k in labels):
        return dict(labels)
    out: dict[str, str] = {}
    for key in sorted(labels):
        name = label_name(key)
        out[name] = f"{out[name]};{labels[key]}" if name in out else labels[key]
    return out


def prometheus_rule(rule: AlertRule, kind: str = "gauge", *, strict: bool = True) -> dict[str, Any]:
    """One Prometheus alerting rule (a dict for a rule file) for ``rule`` on a ``kind`` metric.

    >>> rule = AlertRule(name="high_error_rate", metric="request.errors", aggregation="rate",
    ...                  window_s=300, threshold=0.5, for_s=60, severity="critical",
    ...                  matchers={"name": "POST /checkout"},
    ...                  annotations={"summary": "{{ labels.name }} fails {{ value }}/s"})
    >>> out = prometheus_rule(rule, "counter")
    >>> out["expr"]
    'rate(request_errors_total{name="POST /checkout"}[5m]) > 0.5'
    >>> out["for"], out["labels"], out["annotations"]
    ('1m', {'severity': 'critical'}, {'summary': '{{ $labels.name }} fails {{ $value }}/s'})
    """
    dropped = [
        field
        for field, unsupported in (
            ("detector", rule.detector is not None),
            ("resolve_threshold", rule.resolve_threshold is not None),
            ("no_data", rule.no_data != "ok"),
        )
        if unsupported
    ]
    if dropped and strict:
        raise ValueError(
            f"rule {rule.name!r}: Prometheus has no equivalent of field(s) "
            f"{', '.join(dropped)} (pass strict=False to drop them)"
        )
    if rule.threshold is None:
        raise ValueError(f"rule {rule.name!r}: field 'threshold': Prometheus needs a threshold")
    expr = f"{_expression(rule, kind)} {rule.op} {_number(rule.threshold)}"
    out: dict[str, Any] = {"alert": rule.name, "expr": expr}
    if rule.for_s:
        out["for"] = prometheus_duration(rule.for_s)
    if rule.keep_firing_for_s:
        out["keep_firing_for"] = prometheus_duration(rule.keep_firing_for_s)
    labels = {k: _template(v, rule) for k, v in rule.labels.items()}
    out["labels"] = {**labels, "severity": rule.severity}
    annotations = {k: _template(v, rule) for k, v in rule.annotations.items()}
    if dropped:
        annotations["obskit_dropped"] = ", ".join(dropped)
    if annotations:
        out["annotations"] = annotations
    return out


def prometheus_rules(
    rules: Iterable[AlertRule],
    *,
    kinds: Mapping[str, str] | None = None,
    group: str = "obskit",
    interval_s: float | None = None,
) -> Export:
    """A Prometheus rule file: one group holding every rule that has an equivalent; the
    others are skipped, each with its reason.

    ``kinds`` maps metric names to "counter", "histogram" or "gauge" (default "gauge").
    """
    kinds = kinds or {}
    group_data: dict[str, Any] = {"name": group}
    if interval_s is not None:
        group_data["interval"] = prometheus_duration(interval_s)
    written, skipped = [], []
    for rule in rules:
        try:
            written.append(prometheus_rule(rule, kinds.get(rule.metric, "gauge")))
        except ValueError as exc:
            skipped.append((f"rule {rule.name!r}", str(exc)))
    group_data["rules"] = written
    return Export(yaml_text({"groups": [group_data]}), skipped)


def _name(metric: str, suffix: str = "") -> str:
    name = _INVALID.sub("_", metric)
    if name[:1].isdigit():
        name = "_" + name
    return name + suffix


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _selector(rule: AlertRule, suffix: str) -> str:
    name = _name(rule.metric, suffix)
    parts = [f"{_name(m.name)}{m.op}{json.dumps(m.value)}" for m in rule.matchers]
    return f"{name}{{{','.join(parts)}}}" if parts else name


def _expression(rule: AlertRule, kind: str) -> str:
    aggregation, window = rule.aggregation, prometheus_duration(rule.window_s)
    quantile = PERCENTILES.get(aggregation)
    if kind == "counter":
        series = f"{_selector(rule, '_total')}[{window}]"
        forms = {"rate": f"rate({series})", "sum": f"increase({series})"}
    elif kind == "histogram":
        count = f"{_selector(rule, '_count')}[{window}]"
        total = f"{_selector(rule, '_sum')}[{window}]"
        forms = {
            "rate": f"rate({count})",
            "sum": f"increase({total})",
            "count": f"increase({count})",
            "avg": f"(rate({total}) / rate({count}))",
        }
        if quantile is not None:
            buckets = f"{_selector(rule, '_bucket')}[{window}]"
            forms[aggregation] = f"histogram_quantile({quantile}, rate({buckets}))"
    elif kind == "gauge":
        series = f"{_selector(rule, '')}[{window}]"
        forms = {
            name: f"{name}_over_time({series})"
            for name in ("avg", "sum", "min", "max", "count", "last")
        }
        forms["rate"] = f"(sum_over_time({series}) / {_number(rule.window_s)})"
        if quantile is not None:
            forms[aggregation] = f"quantile_over_time({quantile}, {series})"
    else:
        raise ValueError(f"metric kind must be counter, histogram or gauge, not {kind!r}")
    if aggregation not in forms:
        raise ValueError(
            f"rule {rule.name!r}: field 'aggregation': {aggregation!r} of a {kind} has no "
            "Prometheus equivalent"
        )
    return forms[aggregation]


def _template(text: str, rule: AlertRule) -> str:
    """An obskit template in Prometheus' template language."""
    literal = {
        "threshold": _number(rule.threshold) if rule.threshold is not None else "",
        "metric": rule.metric,
        "severity": rule.severity,
        "aggregation": rule.aggregation,
        "window_s": f"{rule.window_s:g}",
    }
    out = []
    for part in Template(text).parts:
        if isinstance(part, str):
            out.append(part)
        elif part[0] == "labels":
            out.append(f"{{{{ $labels.{part[1]} }}}}")
        elif part[0] == "value":
            out.append("{{ $value }}")
        elif part[0] == "rule":
            out.append("{{ $labels.alertname }}")
        elif part[0] in literal:
            out.append(literal[part[0]])
        else:
            raise ValueError(
                f"rule {rule.name!r}: {{{{ {part[0]} }}}} has no Prometheus equivalent"
            )
    return "".join(out)


def prometheus_duration(seconds: float) -> str:
    """Seconds as a Prometheus duration: ``5m``, ``90s``, ``1h30m``, ``250ms``."""
    milliseconds = round(seconds * 1000)
    if milliseconds % 1000:
        return f"{milliseconds}ms"
    whole, out = milliseconds // 1000, ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            out += f"{whole // size}{unit}"
            whole %= size
    return out or "0s"
