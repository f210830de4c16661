"""The bridge from the standard library's ``logging`` into obskit's pipeline.

``init(capture_stdlib_logging=True)`` attaches :class:`ObskitHandler` to the root logger, so
libraries that use ``logging`` produce the same records, with the same context, as obskit's own
logger. ``extra={...}`` fields become top-level fields.

:class:`CapturedExceptionFilter` goes the other way: on a server's own logger (uvicorn's
``uvicorn.error``, gunicorn's ``gunicorn.error``) it drops the records whose exception obskit
has already captured, so each failure is reported once, by obskit, not a second time as a
multi-line traceback on stderr.
"""

from __future__ import annotations

import logging

from obskit import _runtime, contextstack, diagnostics
from obskit.levels import LEVEL_NUMBERS, level_name
from obskit.logging import sampled_out_now
from obskit.logging.processors import make_record
from obskit.processor import on_export_thread

__all__ = ["CapturedExceptionFilter", "ObskitHandler", "install", "uninstall"]

# Attributes every stdlib LogRecord has; anything else came from ``extra=``.
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class CapturedExceptionFilter(logging.Filter):
    """Drops a log record whose exception obskit already captured (keeps everything else).

    >>> import logging
    >>> exc = RuntimeError("boom")
    >>> record = logging.LogRecord("uvicorn.error", 40, "", 0, "Exception in ASGI app", None,
    ...                            (RuntimeError, exc, None))
    >>> CapturedExceptionFilter().filter(record)
    True
    >>> exc.__obskit_captured__ = True
    >>> CapturedExceptionFilter().filter(record)
    False
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc_info = record.exc_info
        if not exc_info or not isinstance(exc_info, tuple):
            return True
        return not getattr(exc_info[1], "__obskit_captured__", False)


class ObskitHandler(logging.Handler):
    """A ``logging.Handler`` that turns stdlib records into obskit log records."""

    def emit(self, record: logging.LogRecord) -> None:
        # Records logged by obskit's own worker threads (an exporter's HTTP client, say)
        # would loop back into the queue they came from.
        if on_export_thread():
            return
        try:
            level = level_name(record.levelno)
            if sampled_out_now(level):  # log_sample_rate, as for obskit's own logger
                return
            fields = dict(contextstack.get_fields())
            fields.update(contextstack.late_fields())
            for key, value in record.__dict__.items():
                if key not in _STANDARD_ATTRS and not key.startswith("_"):
                    fields[key] = value
            fields["code.function.name"] = record.funcName
            fields["code.line.number"] = record.lineno
            if record.exc_info and record.exc_info[0] is not None:
                fields["exc_info"] = record.exc_info
            _runtime.emit(make_record(level, _message(record), record.name, fields))
        except Exception as exc:
            diagnostics.report("stdlib_bridge", f"could not bridge a logging record: {exc!r}")


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:
        return f"{record.msg!r} % {record.args!r}"


_installed: ObskitHandler | None = None


def install(level: str) -> ObskitHandler:
    """Attach the bridge to the root logger (once); lower the root level if it was unset."""
    global _installed
    root = logging.getLogger()
    if _installed is None:
        _installed = ObskitHandler()
        root.addHandler(_installed)
    number = LEVEL_NUMBERS.get(level)
    if number is not None and root.level > number:
        root.setLevel(number)
    return _installed


def uninstall() -> None:
    """Detach the bridge from the root logger."""
    global _installed
    if _installed is not None:
        logging.getLogger().removeHandler(_installed)
        _installed = None
