"""Checking recorded numbers: what metrics and the alert engine accept (finite numbers only).

A value that is not one is counted (``obskit.pipeline_stats()["problems"]["metrics.bad_value"]``),
reported once, and skipped: recording never raises into the application.
"""

from __future__ import annotations

from typing import Any

from obskit import diagnostics

__all__ = ["finite_number", "refuse"]


def finite_number(name: str, value: Any) -> float | None:
    """``value`` as a finite float, or ``None`` (counted as a problem) when it is not one."""
    if not isinstance(value, (str, bytes)):
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            pass
        else:
            if number - number == 0:
                return number
    refuse(name, value, "only finite numbers are recorded")
    return None


def refuse(name: str, value: Any, why: str) -> None:
    """Count (and report once) a point of ``name`` that is skipped because of ``why``."""
    diagnostics.report(
        "metrics.bad_value",
        f"metric {name!r} got {value!r} ({type(value).__name__}): {why}; the point was skipped",
    )
