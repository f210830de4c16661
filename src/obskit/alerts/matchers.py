"""Label matchers, as Prometheus and Alertmanager write them: ``=``, ``!=``, ``=~``, ``!~``.

Rules select series with them, silences and inhibition rules select alerts with them. As in
Prometheus, a missing label reads as the empty string and regular expressions are anchored at
both ends (``route=~"/api/.*"`` matches ``/api/cart``, not ``/v2/api/cart``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Matcher", "matches_all", "parse_matcher", "parse_matchers"]

_SYNTAX = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.DOTALL)
_OPERATORS = ("=", "!=", "=~", "!~")


@dataclass(frozen=True, slots=True)
class Matcher:
    """One condition on one label.

    >>> m = parse_matcher('route=~"/api/.*"')
    >>> m.matches({"route": "/api/cart"}), m.matches({"route": "/v2/api/cart"})
    (True, False)
    >>> str(m)
    'route=~"/api/.*"'
    """

    name: str
    op: str
    value: str
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op not in _OPERATORS:
            raise ValueError(f"unknown matcher operator {self.op!r}; use one of {_OPERATORS}")
        if self.op in ("=~", "!~"):
            try:
                compiled = re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"bad regular expression {self.value!r}: {exc}") from None
            object.__setattr__(self, "regex", compiled)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        op = self.op
        if op == "=":
            return actual == self.value
        if op == "!=":
            return actual != self.value
        assert self.regex is not None
        found = self.regex.fullmatch(actual) is not None
        return found if op == "=~" else not found

    @property
    def is_equality(self) -> bool:
        return self.op == "="

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def parse_matcher(text: str) -> Matcher:
    """Parse ``name<op>value`` (the value may be double-quoted)."""
    found = _SYNTAX.match(text)
    if found is None:
        raise ValueError(
            f"bad matcher {text!r}: write label=value, label!=value, label=~regex or label!~regex"
        )
    name, op, value = found.groups()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return Matcher(name, op, value)


def parse_matchers(spec: object) -> tuple[Matcher, ...]:
    """Matchers from a mapping (equality), a string, or a list of strings / Matchers.

    >>> [str(m) for m in parse_matchers({"severity": "critical"})]
    ['severity="critical"']
    >>> [str(m) for m in parse_matchers(["env!=dev", 'route=~"/api/.*"'])]
    ['env!="dev"', 'route=~"/api/.*"']
    """
    if spec is None:
        return ()
    if isinstance(spec, Matcher):
        return (spec,)
    if isinstance(spec, str):
        return tuple(parse_matcher(part) for part in _split(spec))
    if isinstance(spec, Mapping):
        return tuple(Matcher(str(name), "=", str(value)) for name, value in spec.items())
    if isinstance(spec, Iterable):
        out: list[Matcher] = []
        for item in spec:
            out.extend(parse_matchers(item))
        return tuple(out)
    raise ValueError(f"matchers must be a mapping, a string or a list, not {type(spec).__name__}")


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """``True`` when every matcher matches ``labels``."""
    return all(m.matches(labels) for m in matchers)


def _split(text: str) -> list[str]:
    """Split ``{a="x", b=~"y"}`` or ``a=x,b=y`` on commas outside quotes."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]
