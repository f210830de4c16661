"""Severity levels: the one definition every part of obskit uses (logs, errors, stores, rules).

Names follow the standard library's ``logging`` (and its numbers, so a stdlib record maps
exactly); ``warn`` and ``fatal`` are accepted as aliases and stored under their canonical name.

>>> level_number("warning"), level_name(35), canonical_level("FATAL")
(30, 'warning', 'critical')
"""

from __future__ import annotations

from typing import Literal

__all__ = ["LEVELS", "LEVEL_NUMBERS", "Level", "canonical_level", "level_name", "level_number"]

Level = Literal["trace", "debug", "info", "warning", "error", "critical"]

#: Level names, lowest first.
LEVELS: tuple[str, ...] = ("trace", "debug", "info", "warning", "error", "critical")
#: Each level's number (the standard library's; ``trace``, 5, sits below ``debug`` for the very
#: chatty: per-item loops, wire dumps).
LEVEL_NUMBERS: dict[str, int] = {
    "trace": 5,
    "debug": 10,
    "info": 20,
    "warning": 30,
    "error": 40,
    "critical": 50,
}
_ALIASES = {"warn": "warning", "fatal": "critical"}
_BY_NUMBER = sorted(((number, name) for name, number in LEVEL_NUMBERS.items()), reverse=True)


def canonical_level(name: object) -> str | None:
    """The canonical name for ``name`` (any case, aliases resolved), or ``None`` if unknown."""
    if not isinstance(name, str):
        return None
    lowered = name.strip().lower()
    lowered = _ALIASES.get(lowered, lowered)
    return lowered if lowered in LEVEL_NUMBERS else None


def level_number(name: str, default: int = 20) -> int:
    """The number of level ``name`` (aliases accepted), ``default`` when unknown."""
    number = LEVEL_NUMBERS.get(name)
    if number is not None:
        return number
    canonical = canonical_level(name)
    return LEVEL_NUMBERS[canonical] if canonical is not None else default


def level_name(number: int) -> str:
    """The highest level at or below ``number`` (``trace`` for anything lower)."""
    for value, name in _BY_NUMBER:
        if number >= value:
            return name
    return "trace"
