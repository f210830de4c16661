"""``obskit.metrics``: numbers in (gauges, latencies, counters), fanned out to metric sinks.

The alert engine and the exporters register sinks; with none registered a call costs one
list check. Built-in series: ``obskit.request`` and ``@obskit.instrument`` record
``request.duration_ms`` / ``request.count`` / ``request.errors`` and
``function.duration_ms`` / ``function.errors``.
"""

from __future__ import annotations

from typing import Any, Protocol

from obskit import diagnostics

__all__ = ["MetricSink", "add_sink", "increment", "observe", "remove_sink", "sinks"]


class MetricSink(Protocol):
    """Receives every observation; must be cheap and thread-safe."""

    def observe(
        self, name: str, value: float, labels: dict[str, Any], timestamp: float | None
    ) -> None: ...

    def increment(
        self, name: str, amount: float, labels: dict[str, Any], timestamp: float | None
    ) -> None: ...


sinks: list[MetricSink] = []


def add_sink(sink: MetricSink) -> None:
    """Register a sink (idempotent)."""
    if sink not in sinks:
        sinks.append(sink)


def remove_sink(sink: MetricSink) -> None:
    if sink in sinks:
        sinks.remove(sink)


def observe(name: str, value: float, /, *, timestamp: float | None = None, **labels: Any) -> None:
    """Record a gauge or latency sample for series ``name{labels}``."""
    for sink in sinks:
        try:
            sink.observe(name, value, labels, timestamp)
        except Exception as exc:
            diagnostics.report(f"metric_sink.{type(sink).__name__}", f"metric sink raised {exc!r}")


def increment(
    name: str, amount: float = 1, /, *, timestamp: float | None = None, **labels: Any
) -> None:
    """Add ``amount`` to the counter series ``name{labels}``."""
    for sink in sinks:
        try:
            sink.increment(name, amount, labels, timestamp)
        except Exception as exc:
            diagnostics.report(f"metric_sink.{type(sink).__name__}", f"metric sink raised {exc!r}")
