"""Error capture (placeholder until the errors capability lands): log the exception at ERROR."""

from __future__ import annotations

from typing import Any

__all__ = ["capture_exception", "capture_message"]


def capture_exception(exc: BaseException | None = None, **context: Any) -> None:
    """Record an exception: for now a log record at ERROR carrying the traceback."""
    import sys

    from obskit.logging import get_logger

    if exc is None:
        exc = sys.exc_info()[1]
        if exc is None:
            return None
    get_logger("obskit.errors").error(
        f"{type(exc).__name__}: {_safe_str(exc)}", exc_info=exc, **context
    )
    # Keep in the rebuilt capture path: the exception event on the active span (issue 7).
    from obskit.tracing import record_exception_on_span

    record_exception_on_span(exc)
    return None


def capture_message(message: str, level: str = "info", **context: Any) -> None:
    """Record a message as an event: for now a log record at ``level``."""
    from obskit.logging import get_logger

    get_logger("obskit.errors").log(level, message, **context)
    return None


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"
