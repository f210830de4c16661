"""Prometheus names for OpenTelemetry-style metric names, units and label names.

obskit names metrics as OpenTelemetry does (``http.server.request.duration``, unit ``s``);
Prometheus wants ``http_server_request_duration_seconds``. The translation follows the
OpenTelemetry specification's "Prometheus and OpenMetrics compatibility" rules, as the
OpenTelemetry Collector's Prometheus exporter applies them:

* characters outside ``[a-zA-Z0-9_:]`` become ``_`` (runs collapse to one), a leading digit
  gets a ``_`` in front;
* the unit, spelled out (``s`` -> ``seconds``, ``By`` -> ``bytes``, ``ms`` ->
  ``milliseconds``, ``1`` -> ``ratio`` for gauges, ``{request}`` annotations dropped, ``m/s``
  -> ``meters_per_second``), is appended unless the name already ends with it;
* monotonic counters end in ``_total``;
* a metric that is not a histogram never ends in a suffix Prometheus reserves for histogram
  series (promtool flags it): ``process.thread.count`` -> ``process_threads``, a trailing
  ``_count`` read as a plural; a trailing ``_sum`` or ``_bucket`` gains ``_value``.

>>> prometheus_name("http.server.request.duration", "histogram", "s")
'http_server_request_duration_seconds'
>>> prometheus_name("orders", "counter")
'orders_total'
>>> prometheus_name("process.memory.usage", "up_down_counter", "By")
'process_memory_usage_bytes'
>>> prometheus_name("process.open_file_descriptor.count", "up_down_counter", "{file_descriptor}")
'process_open_file_descriptors'
>>> label_name("http.route")
'http_route'
"""

from __future__ import annotations

import re

__all__ = ["label_name", "prometheus_name", "unit_suffix"]

_UNITS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "%": "percent",
}
_PER = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month",
        "y": "year"}  # fmt: skip
_INVALID = re.compile(r"[^a-zA-Z0-9_:]+")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]+")
_ANNOTATION = re.compile(r"\{[^}]*\}")


def unit_suffix(unit: str, kind: str = "") -> str:
    """The Prometheus spelling of an OpenTelemetry (UCUM) unit, ``""`` when none applies."""
    unit = _ANNOTATION.sub("", unit).strip()
    if not unit:
        return ""
    if unit == "1":
        return "ratio" if kind == "gauge" else ""
    main, _, per = unit.partition("/")
    words = [_sanitize(_UNITS.get(main, main), _INVALID).strip("_")] if main else []
    if per:
        words.append("per_" + _sanitize(_PER.get(per, _UNITS.get(per, per)), _INVALID).strip("_"))
    return "_".join(w for w in words if w)


def prometheus_name(name: str, kind: str, unit: str = "") -> str:
    """The name PromQL uses for a metric: counters end in ``_total``; a histogram's series are
    this name plus ``_bucket``, ``_sum`` and ``_count``."""
    base = _sanitize(name, _INVALID)
    if base[:1].isdigit():
        base = "_" + base
    monotonic = kind == "counter"
    if monotonic and base.endswith("_total"):
        base = base[: -len("_total")]
    suffix = unit_suffix(unit, kind)
    if suffix and not base.endswith("_" + suffix) and base != suffix:
        base = f"{base}_{suffix}"
    if kind not in ("histogram", "counter"):  # a counter's _total ends it anyway
        base = _unreserved(base)
    return base + "_total" if monotonic else base


def _unreserved(base: str) -> str:
    """``base`` without a histogram series suffix at its end."""
    if base.endswith("_count") and len(base) > len("_count"):
        stem = base[: -len("_count")]
        return stem if stem.endswith("s") else stem + "s"
    if base.endswith(("_sum", "_bucket")):
        return base + "_value"
    return base


def label_name(name: str) -> str:
    """A label name Prometheus accepts (``http.route`` -> ``http_route``)."""
    label = _sanitize(name, _INVALID_LABEL)
    if label[:1].isdigit():
        label = "_" + label
    if label.startswith("__"):  # reserved for Prometheus' own labels
        label = "key" + label
    return label or "_"


def _sanitize(text: str, invalid: re.Pattern[str]) -> str:
    return invalid.sub("_", text)
