"""What the alert exports and histogram-backed windows know of a metric: its declared kind.

One function, :func:`declared_metrics`, reads the instruments declared with ``obskit.metrics``
(kind, Prometheus name, histogram buckets); nothing here looks at the traffic seen so far.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from obskit import metrics
from obskit.alerts.prometheus import MetricKind

__all__ = ["KINDS", "declared_metrics"]

#: The instrument kinds the exports know.
KINDS = ("counter", "up_down_counter", "gauge", "histogram")
_INVALID = re.compile(r"[^a-zA-Z0-9_:]+")


def declared_metrics(overrides: Mapping[str, str] | None = None) -> dict[str, MetricKind]:
    """Every declared metric by name, then ``overrides`` ({name: kind}) on top.

    >>> declared_metrics({"orders": "counter"})["orders"]
    MetricKind(kind='counter', prometheus_name='orders_total', bounds=())
    """
    out: dict[str, MetricKind] = {}
    instruments = getattr(metrics, "instruments", None)
    if instruments is not None:
        for name, instrument in instruments().items():
            bounds = tuple(getattr(instrument, "bounds", None) or ())
            out[name] = MetricKind(instrument.kind, instrument.prometheus_name, bounds)
    for name, kind in (overrides or {}).items():
        if kind not in KINDS:
            from obskit.diagnostics import ConfigError

            raise ConfigError(f"kinds[{name!r}] is {kind!r}; use one of {', '.join(KINDS)}")
        known = out.get(name)
        bounds = known.bounds if known is not None else ()
        out[name] = MetricKind(kind, _prometheus_name(name, kind), bounds)
    return out


def _prometheus_name(name: str, kind: str) -> str:
    base = _INVALID.sub("_", name)
    if base[:1].isdigit():
        base = "_" + base
    if kind == "counter":
        return base if base.endswith("_total") else base + "_total"
    return base
