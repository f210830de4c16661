"""Reading saved detector state back, strictly: a damaged blob fails loudly, never half-loads.

A state blob is JSON data a user stored (a file, a database row, a cache). Anything in it can
be wrong after a bad write or a hand edit, so every field is checked for type and finiteness,
and every failure raises :class:`StateError` naming the field.
"""

from __future__ import annotations

import math
from typing import Any

# The one place obskit.anomaly imports ConfigError from (the core may move it out of config).
from obskit.diagnostics import ConfigError

__all__ = [
    "VERSION",
    "ConfigError",
    "StateError",
    "envelope",
    "read_counts",
    "read_float",
    "read_float_list",
    "read_int",
    "read_optional_float",
]

#: Bumped when a detector's state layout changes incompatibly.
VERSION = 1


class StateError(ConfigError):
    """A detector state blob is damaged, from another detector, or from another version."""


def envelope(state: Any, name: str) -> dict[str, Any]:
    """Check the outer fields every detector state shares, and that it is ``name``'s."""
    if not isinstance(state, dict):
        raise StateError(f"{name} state must be an object (a dict), got {type(state).__name__}")
    if state.get("detector") != name:
        raise StateError(f"state is for detector {state.get('detector')!r}, not {name!r}")
    if state.get("version") != VERSION:
        raise StateError(
            f"{name} state has version {state.get('version')!r}; this obskit reads {VERSION}"
        )
    for key in ("config", "seen", "quiet", "problems", "data"):
        if key not in state:
            raise StateError(f"{name} state is missing {key!r}")
    if not isinstance(state["config"], dict):
        raise StateError(f"{name} state: 'config' must be an object")
    return state


def read_float(data: dict[str, Any], key: str) -> float:
    """A finite number (ints accepted, bools refused)."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise StateError(f"state field {key!r} must be a finite number, got {value!r}")
    return float(value)


def read_optional_float(data: dict[str, Any], key: str) -> float | None:
    return None if data.get(key) is None else read_float(data, key)


def read_int(data: dict[str, Any], key: str, minimum: int = 0) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise StateError(f"state field {key!r} must be an integer >= {minimum}, got {value!r}")
    return value


def read_float_list(data: dict[str, Any], key: str, max_length: int | None = None) -> list[float]:
    """A list of finite numbers, at most ``max_length`` long."""
    value = data.get(key)
    if not isinstance(value, list):
        raise StateError(f"state field {key!r} must be a list of numbers")
    if max_length is not None and len(value) > max_length:
        raise StateError(f"state field {key!r} holds {len(value)} items, at most {max_length}")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
            raise StateError(f"state field {key!r} holds {item!r}, not a finite number")
        out.append(float(item))
    return out


def read_counts(data: dict[str, Any], key: str) -> dict[str, int]:
    value = data.get(key)
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in value.items()
    ):
        raise StateError(f"state field {key!r} must map names to counts")
    return dict(value)
