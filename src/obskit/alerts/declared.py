"""What the alert exports and histogram-backed windows know of a metric: its declared kind.

One function, :func:`declared_metrics`, reads the instruments declared with ``obskit.metrics``
(kind, Prometheus name, histogram buckets); nothing here looks at the traffic seen so far.
"""

from __future__ import annotations

from collections.abc import Mapping

from obskit import metrics
from obskit.alerts.prometheus import MetricKind
from obskit.diagnostics import ConfigError

__all__ = ["declared_metrics"]


def declared_metrics(overrides: Mapping[str, str] | None = None) -> dict[str, MetricKind]:
    """Every declared metric by name, then ``overrides`` ({name: kind}) on top (a metric
    declared with that kind keeps its unit and buckets).

    >>> declared_metrics({"doc.orders.placed": "counter"})["doc.orders.placed"]
    MetricKind(kind='counter', prometheus_name='doc_orders_placed_total', bounds=())
    """
    out = {
        name: MetricKind(instrument.kind, instrument.prometheus_name, tuple(instrument.bounds))
        for name, instrument in metrics.instruments().items()
    }
    for name, kind in (overrides or {}).items():
        if kind not in metrics.KINDS:
            raise ConfigError(f"kinds[{name!r}] is {kind!r}; use one of {', '.join(metrics.KINDS)}")
        known = out.get(name)
        if known is None or known.kind != kind:
            out[name] = MetricKind(kind, metrics.prometheus_name(name, kind))
    return out
