"""Alert rules: what to watch, when it is a problem, and what to say about it.

An :class:`AlertRule` is configuration, validated once by pydantic when it is made (from Python,
a dict, or a rule file through :func:`obskit.alerts.load_rules`); the evaluator then works on
plain attributes. A rule reads, for every series of ``metric`` that its ``matchers`` select, the
``aggregation`` of the last ``window_s`` seconds, and compares it with ``threshold`` using
``op``; or, with a ``detector``, asks an anomaly detector whether the value is anomalous.

Durations accept seconds or Prometheus strings (``"90s"``, ``"5m"``, ``"1h30m"``). Annotations
and labels are templates: ``{{ value }}``, ``{{ threshold }}``, ``{{ labels.route }}``,
``{{ rule }}``, ``{{ metric }}``, ``{{ severity }}``, ``{{ aggregation }}``, ``{{ window_s }}``
and ``{{ score }}`` (Prometheus' ``{{ $value }}`` and ``{{ $labels.route }}`` work too).
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    field_validator,
)

from obskit._actions import Action, as_action
from obskit.alerts.matchers import Matcher, parse_matchers
from obskit.alerts.window import AGGREGATIONS
from obskit.diagnostics import ConfigError

__all__ = [
    "AlertRule",
    "Detector",
    "DetectorResult",
    "ManualRule",
    "RuleError",
    "Template",
    "format_value",
    "parse_duration",
]

Aggregation = Literal[
    "avg", "sum", "min", "max", "count", "rate", "last", "p50", "p90", "p95", "p99"
]
Operator = Literal[">", ">=", "<", "<=", "==", "!="]
Severity = Literal["info", "warning", "error", "critical"]
NoDataPolicy = Literal["ok", "alerting", "keep_state"]

assert set(AGGREGATIONS) == set(Aggregation.__args__)  # type: ignore[attr-defined]


class RuleError(ConfigError):
    """A rule (or rule file) that cannot work; the message lists every problem found."""


@runtime_checkable
class DetectorResult(Protocol):
    """What a detector's ``update`` returns (see :mod:`obskit.anomaly`)."""

    @property
    def score(self) -> float: ...

    @property
    def is_anomaly(self) -> bool: ...


@runtime_checkable
class Detector(Protocol):
    """A streaming anomaly detector: one ``update`` per evaluated value."""

    def update(self, value: float, timestamp: float | None = None) -> DetectorResult: ...


# -- durations -------------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: Any) -> Any:
    """Seconds from a number or a Prometheus duration string.

    >>> parse_duration("1h30m"), parse_duration("90s"), parse_duration(2.5)
    (5400.0, 90.0, 2.5)
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"{value!r} is not a duration: use seconds or e.g. '90s', '5m', '1h'")
        return sum(float(number) * _UNIT_S[unit] for number, unit in parts)
    return value


Seconds = Annotated[float, BeforeValidator(parse_duration), Field(ge=0, allow_inf_nan=False)]
PositiveSeconds = Annotated[
    float, BeforeValidator(parse_duration), Field(gt=0, allow_inf_nan=False)
]


def _to_matchers(value: Any) -> tuple[Matcher, ...]:
    return parse_matchers(value)


Matchers = Annotated[
    tuple[Matcher, ...],
    PlainValidator(_to_matchers),
    PlainSerializer(lambda ms: [str(m) for m in ms], return_type=list),
]


# -- templates -------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{\{\s*\$?([A-Za-z_]\w*)(?:\.([\w.-]+))?\s*\}\}")
TEMPLATE_NAMES = (
    "value",
    "threshold",
    "labels",
    "rule",
    "metric",
    "severity",
    "aggregation",
    "window_s",
    "score",
)


def format_value(value: Any) -> str:
    """How numbers appear in annotations: up to 6 significant digits; ``None`` is no data."""
    if value is None:
        return "no data"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class Template:
    """A string with ``{{ name }}`` placeholders, checked once and rendered cheaply.

    >>> Template("{{ labels.route }} at {{ value }} (limit {{ threshold }})").render(
    ...     {"labels": {"route": "/cart"}, "value": 0.1234567, "threshold": 0.05})
    '/cart at 0.123457 (limit 0.05)'
    >>> Template("{{ vaule }}")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown template variable 'vaule' in '{{ vaule }}'; known: value, threshold, ...
    """

    __slots__ = ("parts", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.parts: list[str | tuple[str, str | None]] = []
        position = 0
        for found in _PLACEHOLDER.finditer(source):
            name, attribute = found.group(1), found.group(2)
            if name not in TEMPLATE_NAMES:
                raise ValueError(
                    f"unknown template variable {name!r} in {source!r}; "
                    f"known: {', '.join(TEMPLATE_NAMES)}"
                )
            if (name == "labels") != (attribute is not None):
                raise ValueError(
                    f"write {{{{ labels.<name> }}}} for a label, {{{{ {name} }}}} otherwise "
                    f"(in {source!r})"
                )
            self.parts.append(source[position : found.start()])
            self.parts.append((name, attribute))
            position = found.end()
        self.parts.append(source[position:])
        if "{{" in "".join(p for p in self.parts if isinstance(p, str)):
            raise ValueError(f"unclosed or malformed placeholder in {source!r}")

    def render(self, context: Mapping[str, Any]) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif part[1] is not None:
                out.append(str(context.get("labels", {}).get(part[1], "")))
            else:
                out.append(format_value(context.get(part[0])))
        return "".join(out)


# -- the rule ---------------------------------------------------------------------------------


class AlertRule(BaseModel):
    """One alert rule (pydantic-validated; immutable). Every error names its field.

    >>> rule = AlertRule(name="high_error_rate", metric="request.errors", aggregation="rate",
    ...                  window_s="5m", op=">", threshold=0.5, for_s=60, severity="critical",
    ...                  matchers={"name": "POST /checkout"},
    ...                  annotations={"summary": "{{ labels.name }} fails {{ value }}/s"})
    >>> rule.window_s, rule.group_by
    (300.0, ('alertname',))
    >>> AlertRule(name="x", metric="m", op=">")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for AlertRule
    threshold
      Value error, a threshold is required (unless the rule has a detector) ...
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: str = Field(min_length=1)
    metric: str = Field(min_length=1)
    matchers: Matchers = ()
    aggregation: Aggregation = "avg"
    window_s: PositiveSeconds = 60.0
    #: A ratio rule: the value is aggregation(metric) / aggregation(denominator) over the same
    #: window and label set (e.g. errors over requests); no data when the denominator is 0.
    denominator: str | None = Field(default=None, min_length=1)
    #: Aggregate across series, keeping only these labels (``[]``: one value for all), as
    #: PromQL's ``sum by (...)``; alerts then carry only these labels. ``None``: per series.
    aggregate_by: tuple[str, ...] | None = None
    #: Multi-window alerts: the condition must also hold over this shorter window, so the
    #: alert ends soon after the problem does (as the SRE workbook's burn-rate alerts).
    short_window_s: PositiveSeconds | None = None
    #: Bucket width of the window; by default the engine splits ``window_s`` in equal buckets.
    resolution_s: PositiveSeconds | None = None
    op: Operator = ">"
    #: An anomaly detector (an object with ``update``, copied per series), a factory (a class
    #: or zero-argument callable, called per series), or an import path "package.module:Name".
    detector: Any = None
    threshold: float | None = Field(default=None, validate_default=True, allow_inf_nan=False)
    #: Hysteresis: once active, the alert stays active until the value crosses this instead.
    resolve_threshold: float | None = Field(default=None, allow_inf_nan=False)
    for_s: Seconds = 0.0
    keep_firing_for_s: Seconds = 0.0
    severity: Severity = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    #: Labels that form notification groups; ("...",) puts every alert in its own group.
    group_by: tuple[str, ...] = ("alertname",)
    channels: tuple[str, ...] = ()
    escalation: str | None = None
    no_data: NoDataPolicy = "ok"
    #: Actions (:class:`obskit.alerts.Action`, a function, or an import path
    #: "package.module:function"), called with the :class:`~obskit.signals.Alert` on a worker
    #: thread when one of the rule's alerts starts firing / resolves (see docs/alerts.md).
    on_fire: Any = None
    on_resolve: Any = None

    @field_validator("resolution_s")
    @classmethod
    def _whole_buckets(cls, value: float | None, info: ValidationInfo) -> float | None:
        window = info.data.get("window_s")
        if value is None or window is None:
            return value
        buckets = window / value
        if abs(buckets - round(buckets)) > 1e-9 or not 1 <= round(buckets) <= 10_000:
            raise ValueError(
                f"window_s ({window:g}) must be a whole number (1 to 10000) of resolution_s "
                f"({value:g}) buckets"
            )
        return value

    @field_validator("short_window_s")
    @classmethod
    def _shorter(cls, value: float | None, info: ValidationInfo) -> float | None:
        window = info.data.get("window_s")
        if value is not None and window is not None and value >= window:
            raise ValueError(
                f"short_window_s ({value:g}) must be shorter than window_s ({window:g})"
            )
        return value

    @field_validator("aggregate_by")
    @classmethod
    def _label_list(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and any(not name for name in value):
            raise ValueError("label names must not be empty")
        if value is not None and {"alertname", "severity"} & set(value):
            raise ValueError("alertname and severity are the rule's, not series labels")
        return value

    @field_validator("detector")
    @classmethod
    def _detector(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = _import(value, "detector")
        if value is not None and not (callable(value) or hasattr(value, "update")):
            raise ValueError(
                "a detector is an object with update(value, timestamp), or a factory of one"
            )
        return value

    @field_validator("on_fire", "on_resolve")
    @classmethod
    def _action(cls, value: Any, info: ValidationInfo) -> Action | None:
        if isinstance(value, str):
            value = _import(value, "action")
        return as_action(value, str(info.field_name))

    @field_validator("threshold")
    @classmethod
    def _threshold_or_detector(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is None and info.data.get("detector") is None and "detector" in info.data:
            raise ValueError("a threshold is required (unless the rule has a detector)")
        return value

    @field_validator("resolve_threshold")
    @classmethod
    def _hysteresis_direction(cls, value: float | None, info: ValidationInfo) -> float | None:
        op, threshold = info.data.get("op"), info.data.get("threshold")
        if value is None or op is None:
            return value
        if threshold is None:
            raise ValueError("resolve_threshold needs a threshold")
        if op in ("==", "!="):
            raise ValueError(f"resolve_threshold has no meaning with op {op!r}")
        if op in (">", ">=") and value > threshold:
            raise ValueError(
                f"with op {op!r} the alert resolves when the value falls back, so "
                f"resolve_threshold ({value:g}) must be <= threshold ({threshold:g})"
            )
        if op in ("<", "<=") and value < threshold:
            raise ValueError(
                f"with op {op!r} the alert resolves when the value climbs back, so "
                f"resolve_threshold ({value:g}) must be >= threshold ({threshold:g})"
            )
        return value

    @field_validator("labels")
    @classmethod
    def _own_labels(cls, value: dict[str, str]) -> dict[str, str]:
        for reserved in ("alertname", "severity"):
            if reserved in value:
                field = "name" if reserved == "alertname" else "severity"
                raise ValueError(f"label {reserved!r} is set by the rule's {field}; use that")
        for text in value.values():
            Template(text)
        return value

    @field_validator("annotations")
    @classmethod
    def _templates(cls, value: dict[str, str]) -> dict[str, str]:
        for text in value.values():
            Template(text)
        return value

    @field_validator("group_by", "channels")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not item for item in value):
            raise ValueError("names must not be empty")
        return value

    @property
    def is_percentile(self) -> bool:
        return self.aggregation.startswith("p")

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics the rule reads (its metric, and its denominator if any)."""
        return (self.metric,) if self.denominator is None else (self.metric, self.denominator)

    @property
    def is_simple(self) -> bool:
        """One metric, per series, one window: the evaluator's fast path."""
        return self.denominator is None and self.aggregate_by is None and not self.short_window_s

    def to_dict(self) -> dict[str, Any]:
        """The rule as plain data (what a rule file holds)."""
        return self.model_dump(
            mode="json", exclude={"detector", "on_fire", "on_resolve"}, exclude_defaults=True
        )


@dataclass(frozen=True, slots=True)
class ManualRule:
    """What routing needs to know of an alert raised by hand (``obskit.alerts.trigger``): the
    same names as :class:`AlertRule` (``name``, ``severity``, ``group_by``, ``channels``,
    ``escalation``), and the ``dedup_key`` that identifies the alert."""

    name: str
    severity: str
    dedup_key: str
    group_by: tuple[str, ...] = ("alertname",)
    channels: tuple[str, ...] = ()
    escalation: str | None = None


def _import(path: str, what: str) -> Any:
    module_name, _, attribute = path.replace(":", ".").rpartition(".")
    if not module_name:
        raise ValueError(f"{path!r} is not an import path like 'package.module:Name'")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import {what} {path!r}: {exc}") from None


def compare(op: str, value: float, threshold: float) -> bool:
    """``value <op> threshold``."""
    if op == ">":
        return value > threshold
    if op == ">=":
        return value >= threshold
    if op == "<":
        return value < threshold
    if op == "<=":
        return value <= threshold
    if op == "==":
        return math.isclose(value, threshold, rel_tol=1e-12, abs_tol=1e-12)
    return not math.isclose(value, threshold, rel_tol=1e-12, abs_tol=1e-12)
