"""The structured logger: structlog's processor chain, feeding obskit's pipeline.

``get_logger(name)`` returns a :class:`Logger` usable at import time, before ``init``: it always
follows the current configuration (level, processors). A call below the level returns after one
integer comparison; an emitted call runs the processors on the calling thread and queues a
:class:`~obskit.signals.LogRecord`; rendering and I/O happen on the exporter's worker thread.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from structlog import BoundLoggerBase

from obskit import _runtime, diagnostics
from obskit.levels import LEVEL_NUMBERS, level_name, level_number
from obskit.listeners import Listeners
from obskit.logging import processors
from obskit.logging.processors import make_record
from obskit.signals import LogRecord

__all__ = ["Logger", "get_logger", "record_listeners", "set_level"]

_min_level = 20
#: Levels kept only in part (``log_sample_rate``): level -> share kept. Never error/critical.
_sample_rates: dict[str, float] = {}
#: Records dropped by ``log_sample_rate``, per level, since the process started.
sampled_out: dict[str, int] = {}

#: The processor chain shared by every logger; ``init`` rebuilds it in place.
CHAIN: list[processors.Processor] = [processors.add_context, processors.to_record]

#: Called with each emitted LogRecord (breadcrumbs, metrics); must be cheap.
record_listeners: Listeners[Callable[[LogRecord], None]] = Listeners("log_record")
#: Called with the level of each record ``log_sample_rate`` dropped (metrics counts them).
sampled_listeners: Listeners[Callable[[str], None]] = Listeners("log_sampled")


def set_level(level: str) -> None:
    """Set the minimum level for every obskit logger."""
    global _min_level
    _min_level = LEVEL_NUMBERS[level]


def set_sample_rates(rates: dict[str, float]) -> None:
    """Keep only this share of the records of each level (errors are never sampled)."""
    _sample_rates.clear()
    _sample_rates.update(
        {level: rate for level, rate in rates.items() if rate < 1 and LEVEL_NUMBERS[level] < 40}
    )


def sampled_out_now(level: str) -> bool:
    """Whether ``log_sample_rate`` drops this record of ``level`` (counted if so).

    One draw per record; error and critical are never sampled. obskit's logger and the stdlib
    bridge both ask here, so a level's share and its count are the same whichever way it came.
    """
    rate = _sample_rates.get(level)
    if rate is None or random.random() < rate:
        return False
    sampled_out[level] = sampled_out.get(level, 0) + 1
    if sampled_listeners.callbacks:
        sampled_listeners.notify(level)
    return True


def configure_chain(user_processors: list[Callable[..., Any]]) -> None:
    """Install ``add_context``, the user's processors, then ``to_record``."""
    CHAIN[:] = [processors.add_context, *user_processors, processors.to_record]


class _PipelineSink:
    """The object structlog "logs to": it hands the finished record to the pipeline."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def emit(self, record: LogRecord) -> None:
        _runtime.emit(record)
        for listener in record_listeners.callbacks:  # (Listeners.notify, inlined)
            try:
                listener(record)
            except Exception as exc:
                record_listeners.report(listener, exc)

    debug = info = warning = error = critical = exception = msg = emit


class Logger(BoundLoggerBase):
    """A structlog bound logger whose output is obskit's pipeline. Never raises from a call.

    Context fields, bound fields and call keywords all land as top-level fields of the record;
    positional arguments are %-formatted into the message, as with stdlib logging.
    """

    _logger: _PipelineSink

    @property
    def name(self) -> str:
        return self._logger.name

    def _emit(self, method: str, event: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        if _sample_rates and sampled_out_now(method):
            return
        try:
            if args:
                event = _interpolate(event, args)
            if "event" in kw or "method_name" in kw or "self" in kw:
                kw = _rename_reserved(kw)
            if self._processors is CHAIN and len(CHAIN) == 2:
                # no user processors: add_context and to_record in one step, without
                # structlog's generic chain loop (the same fields, the same record)
                sink = self._logger
                sink.emit(processors.record_for(method, event, sink.name, self._context, kw))
            else:
                self._proxy_to_logger(method, event, **kw)
        except Exception as exc:  # a broken user processor or value: never the app's problem
            diagnostics.report("log_call", f"a log call failed inside obskit: {exc!r}")
            try:
                fields = {"obskit_error": repr(exc)}
                self._logger.emit(make_record(method, event, self.name, fields))
            except Exception:
                pass

    def trace(self, event: Any = "", /, *args: Any, **kw: Any) -> None:
        """Log below DEBUG (level ``trace``, 5): on only with ``level="trace"``."""
        if _min_level <= 5:
            self._emit("trace", event, args, kw)

    def debug(self, event: Any = "", /, *args: Any, **kw: Any) -> None:
        if _min_level <= 10:
            self._emit("debug", event, args, kw)

    def info(self, event: Any = "", /, *args: Any, **kw: Any) -> None:
        if _min_level <= 20:
            self._emit("info", event, args, kw)

    def warning(self, event: Any = "", /, *args: Any, **kw: Any) -> None:
        if _min_level <= 30:
            self._emit("warning", event, args, kw)

    warn = warning

    def error(self, event: Any = "", /, *args: Any, **kw: Any) -> None:
        if _min_level <= 40:
            self._emit("error", event, args, kw)

    def exception(self, event: Any = "", /, *args: Any, **kw: Any) -> None:
        """Log at ERROR with the exception being handled (or ``exc_info=...``)."""
        if _min_level <= 40:
            kw.setdefault("exc_info", True)
            self._emit("error", event, args, kw)

    def critical(self, event: Any = "", /, *args: Any, **kw: Any) -> None:
        if _min_level <= 50:
            self._emit("critical", event, args, kw)

    fatal = critical

    def log(self, level: str | int, event: Any = "", /, *args: Any, **kw: Any) -> None:
        """Log at a level given by name or stdlib number."""
        number = level_number(level) if isinstance(level, str) else level
        if _min_level <= number:
            self._emit(level_name(number), event, args, kw)

    def is_enabled_for(self, level: str) -> bool:
        return _min_level <= level_number(level)

    # -- specialised events: each sets a ``category`` field ----------------------------------

    def user_action(self, action: str, /, **kw: Any) -> None:
        """Something a user did (signed in, checked out)."""
        if _min_level <= 20:
            self._emit("info", action, (), {"category": "user_action", **kw})

    def performance(self, metric: str, value: float, /, unit: str = "ms", **kw: Any) -> None:
        """A measurement worth a log line (a slow query, a batch duration)."""
        if _min_level <= 20:
            fields = {"category": "performance", "metric": metric, "value": value, "unit": unit}
            self._emit("info", f"{metric}={value}{unit}", (), {**fields, **kw})

    def business(self, event: str, /, **kw: Any) -> None:
        """A business event (order placed, refund issued)."""
        if _min_level <= 20:
            self._emit("info", event, (), {"category": "business", **kw})

    def security(self, event: str, /, *, level: str = "warning", **kw: Any) -> None:
        """A security-relevant event (failed login, permission denied); WARNING by default."""
        if _min_level <= level_number(level, 30):
            self._emit(level, event, (), {"category": "security", **kw})

    # -- derived loggers ---------------------------------------------------------------------

    def child(self, suffix: str, /, **fields: Any) -> Logger:
        """A logger named ``<name>.<suffix>`` with this logger's fields plus ``fields``."""
        name = f"{self.name}.{suffix}" if self.name else suffix
        return Logger(_PipelineSink(name), CHAIN, {**self._context, **fields})


#: Keyword names the call itself needs: a field given under one is kept as ``field_<name>``
#: (the name ``LogRecord.to_dict`` gives any field that collides with a record key).
_RESERVED = ("event", "method_name", "self")


def _rename_reserved(kw: dict[str, Any]) -> dict[str, Any]:
    return {f"field_{k}" if k in _RESERVED else k: v for k, v in kw.items()}


def _interpolate(event: Any, args: tuple[Any, ...]) -> Any:
    try:
        return str(event) % args
    except Exception:
        return f"{event} {args!r}"


def get_logger(name: str = "", **fields: Any) -> Logger:
    """A logger called ``name`` with ``fields`` bound to every record it emits.

    >>> log = get_logger("shop", region="eu")
    >>> log.name
    'shop'
    """
    return Logger(_PipelineSink(name), CHAIN, fields)
