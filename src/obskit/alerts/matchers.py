r"""Label matchers, as Prometheus and Alertmanager write them: ``=``, ``!=``, ``=~``, ``!~``.

Rules select series with them, silences and inhibition rules select alerts with them. As in
Prometheus, a missing label reads as the empty string and regular expressions are anchored at
both ends (``route=~"/api/.*"`` matches ``/api/cart``, not ``/v2/api/cart``).

Regular expressions are held to RE2's syntax (Go's ``regexp``, what Prometheus and
Alertmanager run), so a rule means the same in both engines: a Python-only construct
(lookaround, backreference, atomic group, possessive quantifier, conditional, ``\Z``...) is
refused when the matcher is made, with what to write instead. :func:`re2_problem` is the check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Matcher", "matches_all", "parse_matcher", "parse_matchers", "re2_problem"]

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
            problem = re2_problem(self.value)
            if problem is not None:
                raise ValueError(
                    f"regular expression {self.value!r} is not RE2 (what Prometheus and "
                    f"Alertmanager run): {problem}"
                )
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


# Python constructs RE2 refuses (or reads differently), after an unescaped "(?".
_GROUP_PROBLEMS = (
    ("(?=", "lookahead (?=...) has no RE2 equivalent; match the text itself"),
    ("(?!", "negative lookahead (?!...) has no RE2 equivalent; use a !~ matcher instead"),
    ("(?<=", "lookbehind (?<=...) has no RE2 equivalent"),
    ("(?<!", "negative lookbehind (?<!...) has no RE2 equivalent; use a !~ matcher instead"),
    ("(?P=", "backreference (?P=name) has no RE2 equivalent"),
    ("(?#", "comment group (?#...) is not RE2; remove it"),
    ("(?>", "atomic group (?>...) is not RE2; use a plain group (...)"),
    ("(?(", "conditional group (?(...)...) is not RE2"),
)
_RE2_FLAGS = set("imsU-")
_REPEAT = re.compile(r"\{(\d*)(,?)(\d*)\}")


def re2_problem(pattern: str) -> str | None:
    r"""Why ``pattern`` (valid for Python's ``re``) is not valid RE2, or ``None``.

    >>> re2_problem(r"/api/(cart|checkout)"), re2_problem(r"\d+\.\d+")
    (None, None)
    >>> re2_problem("(?!/health).*")
    'negative lookahead (?!...) has no RE2 equivalent; use a !~ matcher instead'
    >>> re2_problem(r"(a)\1")
    'backreference \\1 has no RE2 equivalent'
    """
    i, size, in_class = 0, len(pattern), False
    while i < size:
        char = pattern[i]
        if char == "\\":
            following = pattern[i + 1 : i + 2]
            if following == "Z":
                return "\\Z is not RE2; matchers are anchored at both ends already, drop it"
            if following in ("u", "U", "N"):
                return f"\\{following} escapes are not RE2; use \\x{{...}} or the character itself"
            backreference = following.isdigit() and following != "0"
            if backreference and not in_class and not pattern[i + 2 : i + 3].isdigit():
                return f"backreference \\{following} has no RE2 equivalent"
            i += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
            i += 1
            continue
        if char == "[":
            in_class = True
            i += 1
            if pattern[i : i + 1] == "^":
                i += 1
            if pattern[i : i + 1] == "]":  # a leading ] is a literal
                i += 1
            continue
        if pattern.startswith("(?", i):
            for prefix, problem in _GROUP_PROBLEMS:
                if pattern.startswith(prefix, i):
                    return problem
            flags = re.match(r"\(\?([A-Za-z-]*)[:)]", pattern[i:])
            if flags and not set(flags.group(1)) <= _RE2_FLAGS:
                bad = "".join(sorted(set(flags.group(1)) - _RE2_FLAGS))
                return f"flag(s) {bad!r} are not RE2 (RE2 has i, m, s and U)"
        if char in "*+?}" and pattern[i + 1 : i + 2] == "+":
            return "possessive quantifiers (*+, ++, ?+) are not RE2; drop the second +"
        if char == "{":
            repeat = _REPEAT.match(pattern, i)
            if repeat is not None:
                low, comma, high = repeat.groups()
                if not low and comma:
                    return "{,n} means {0,n} in Python but a literal in RE2; write {0,n}"
                if any(n and int(n) > 1000 for n in (low, high)):
                    return "RE2 allows repeat counts up to 1000"
        i += 1
    return None


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
