"""Reading rules from Python data and from YAML/JSON files, with every mistake listed at once.

A rule file is either a list of rules, or a mapping with ``rules`` and optionally
``channels`` (see :mod:`obskit.alerts.declared_channels`), ``inhibit_rules`` and
``escalation_policies``::

    rules:
      - name: high_error_rate
        metric: obskit.errors
        aggregation: rate
        window_s: 5m
        op: ">"
        threshold: 0.5
        for_s: 1m
        severity: critical
        channels: [pager]
        annotations:
          summary: "{{ labels.name }} fails {{ value }} times a second"
    inhibit_rules:
      - source_matchers: {severity: critical}
        target_matchers: {severity: warning}
        equal: [name]

Nothing is loaded unless everything is valid; the :class:`~obskit.alerts.rules.RuleError`
names, for each problem, the rule (by name and position) and the field.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from obskit.alerts.declared_channels import declared_channels
from obskit.alerts.notify import Channel
from obskit.alerts.policies import EscalationPolicy, InhibitRule
from obskit.alerts.rules import AlertRule, RuleError

__all__ = ["RuleSet", "parse_rules", "read_rule_file"]

_SECTIONS = ("channels", "rules", "inhibit_rules", "escalation_policies")


@dataclass(slots=True)
class RuleSet:
    rules: list[AlertRule] = field(default_factory=list)
    inhibit_rules: list[InhibitRule] = field(default_factory=list)
    escalation_policies: list[EscalationPolicy] = field(default_factory=list)
    channels: dict[str, Channel] = field(default_factory=dict)


def read_rule_file(path: str | Path) -> Any:
    """The data in a ``.yaml``/``.yml`` or ``.json`` rule file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"cannot read rule file {str(path)!r}: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise RuleError(f"{path.name}: not valid JSON: {exc}") from None
    try:
        import yaml
    except ImportError:
        raise RuleError("YAML rule files need PyYAML: pip install 'obskit[yaml]'") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(f"{path.name}: not valid YAML: {exc}") from None


def parse_rules(
    data: Any,
    *,
    source: str = "rules",
    channels: Iterable[str] | None = None,
    existing_channels: Iterable[str] = (),
    existing_rules: Iterable[str] = (),
    existing_policies: Iterable[str] = (),
) -> RuleSet:
    """Validate ``data`` completely; a :class:`RuleSet`, or a RuleError listing every problem.

    ``channels``, when given, are the channel names rules and policies may use (besides those
    the data declares); ``existing_channels`` are names a declared channel may not take.
    """
    if isinstance(data, list):
        data = {"rules": data}
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise RuleError(f"{source}: expected a list of rules or a mapping with 'rules'")
    problems: list[str] = []
    unknown = [key for key in data if key not in _SECTIONS]
    for key in unknown:
        problems.append(f"unknown section {key!r}{_suggest(str(key), _SECTIONS)}")
    out = RuleSet()
    channel_problems: list[str] = []
    out.channels = declared_channels(
        data.get("channels"), channel_problems, taken=dict.fromkeys(existing_channels)
    )
    if channels is not None:  # else only the rules matter (an export): a channel that cannot
        problems.extend(channel_problems)  # be built here (no secrets in CI) is left out
    out.escalation_policies = _validate_all(
        EscalationPolicy, data.get("escalation_policies"), "escalation policy", problems
    )
    out.inhibit_rules = _validate_all(
        InhibitRule, data.get("inhibit_rules"), "inhibit rule", problems
    )
    out.rules = _validate_all(AlertRule, data.get("rules"), "rule", problems)
    known = set(channels) | set(out.channels) if channels is not None else None
    policies = set(existing_policies) | {p.name for p in out.escalation_policies}
    taken = set(existing_rules)
    for position, rule in enumerate(out.rules, 1):
        where = f"rule {rule.name!r} (#{position})"
        if rule.name in taken:
            problems.append(f"{where}: field 'name': a rule called {rule.name!r} already exists")
        taken.add(rule.name)
        if known is not None:
            for name in rule.channels:
                if name not in known:
                    problems.append(f"{where}: field 'channels': {_unknown_channel(name, known)}")
        if rule.escalation is not None and rule.escalation not in policies:
            problems.append(
                f"{where}: field 'escalation': no escalation policy called {rule.escalation!r}"
                f"{_suggest(rule.escalation, policies)}"
            )
    if known is not None:
        for policy in out.escalation_policies:
            for name in sorted(policy.channels - known):
                problems.append(
                    f"escalation policy {policy.name!r}: field 'levels': "
                    f"{_unknown_channel(name, known)}"
                )
    if problems:
        count = len(problems)
        raise RuleError(
            f"{source}: {count} problem{'s' if count > 1 else ''}:\n  - " + "\n  - ".join(problems)
        )
    return out


def describe_errors(
    kind: str, name: str, position: int | None, exc: ValidationError, model: type[BaseModel]
) -> list[str]:
    """One line per pydantic error: which rule, which field, what is wrong, what was given."""
    where = f"{kind} {name!r}" if name else kind
    if position is not None:
        where += f" (#{position})"
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(whole)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown field{_suggest(str(error['loc'][0]), list(model.model_fields))}"
        elif error["type"] != "missing" and error.get("input") is not None:
            message += f" (got {error.get('input')!r})"
        lines.append(f"{where}: field {location!r}: {message}")
    return lines


def _validate_all(model: Any, items: Any, kind: str, problems: list[str]) -> list[Any]:
    if items is None:
        return []
    if not isinstance(items, list):
        problems.append(f"{kind}s must be a list, not {type(items).__name__}")
        return []
    valid = []
    for position, item in enumerate(items, 1):
        if isinstance(item, model):
            valid.append(item)
            continue
        name = str(item.get("name", "")) if isinstance(item, Mapping) else ""
        if not isinstance(item, Mapping):
            problems.append(f"{kind} #{position}: expected a mapping, not {type(item).__name__}")
            continue
        try:
            valid.append(model.model_validate(dict(item)))
        except ValidationError as exc:
            problems.extend(describe_errors(kind, name, position, exc, model))
    return valid


def _unknown_channel(name: str, known: set[str]) -> str:
    listed = ", ".join(sorted(known)) or "none yet"
    return (
        f"no channel called {name!r}{_suggest(name, known)}; add it with "
        f"add_channel({name!r}, ...) before the rule (known: {listed})"
    )


def _suggest(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
