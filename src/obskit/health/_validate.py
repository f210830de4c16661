"""Checking registration options: a mistake raises ``ConfigError`` saying what to change."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

from obskit.diagnostics import ConfigError

Tags: TypeAlias = "str | Iterable[str] | None"


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def valid_name(name: object) -> str:
    require(
        isinstance(name, str) and bool(name.strip()) and ":" not in name,
        f"a health check name must be a non-empty string without ':' (the IETF report uses "
        f"'name:measurement' keys), got {name!r}",
    )
    assert isinstance(name, str)
    return name


def valid_callable(name: str, fn: object) -> Callable[[], Any]:
    require(callable(fn), f"health check {name!r}: {fn!r} is not callable")
    assert callable(fn)
    return fn


def valid_measurement(name: str, measurement: object) -> str | None:
    if measurement is None:
        return None
    require(
        isinstance(measurement, str) and bool(measurement) and ":" not in measurement,
        f"health check {name!r}: measurement must be a non-empty string without ':', "
        f"got {measurement!r}",
    )
    return str(measurement)


def positive(name: str, field: str, value: object) -> float:
    require(
        isinstance(value, int | float) and not isinstance(value, bool) and value > 0,
        f"health check {name!r}: {field} must be a number of seconds > 0, got {value!r}",
    )
    return float(value)  # type: ignore[arg-type]


def non_negative(name: str, field: str, value: object) -> float | None:
    if value is None:
        return None
    require(
        isinstance(value, int | float) and not isinstance(value, bool) and value >= 0,
        f"health check {name!r}: {field} must be a number of seconds >= 0, got {value!r}",
    )
    return float(value)  # type: ignore[arg-type]


def at_least_one(name: str, field: str, value: object) -> int:
    require(
        isinstance(value, int) and not isinstance(value, bool) and value >= 1,
        f"health check {name!r}: {field} must be a whole number >= 1, got {value!r}",
    )
    assert isinstance(value, int)
    return value


def valid_tags(name: str, tags: Tags) -> frozenset[str]:
    if tags is None:
        return frozenset()
    items = [tags] if isinstance(tags, str) else list(tags)
    require(
        all(isinstance(t, str) and t for t in items),
        f"health check {name!r}: tags must be non-empty strings, e.g. tags=('ready',); "
        f"got {tags!r}",
    )
    return frozenset(items)
