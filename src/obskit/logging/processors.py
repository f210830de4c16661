"""The structlog processors obskit runs on the emitting thread, ending in a LogRecord.

A processor is structlog's ``(logger, method_name, event_dict) -> event_dict``. The chain is
``add_context``, then any user processors from ``init(processors=[...])``, then
``to_record``, which turns the event dict into a :class:`~obskit.signals.LogRecord` for the
pipeline. Rendering (JSON, console) happens later, on the exporters' worker threads.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable, MutableMapping
from typing import Any

from obskit import contextstack
from obskit.levels import LEVELS
from obskit.scrubbing import safe_repr
from obskit.signals import LogRecord
from obskit.tracing import trace_ids

__all__ = ["add_context", "format_exception", "make_record", "record_for", "to_record"]

EventDict = MutableMapping[str, Any]
Processor = Callable[[Any, str, EventDict], Any]


def add_context(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    """Merge the context stack under the call's own fields (the call's keywords win)."""
    fields = contextstack.get_fields()
    late = contextstack.late_fields()
    if fields or late:
        merged = dict(fields)
        if late:
            merged.update(late)
        merged.update(event_dict)
        return merged
    return event_dict


def record_for(
    method_name: str, event: Any, logger_name: str, bound: Any, kw: dict[str, Any]
) -> LogRecord:
    """What ``add_context`` then ``to_record`` make of a log call, in one step.

    The fields are the context's, then the late ones, the logger's bound ones and the call's
    keywords (later ones win); an ``event`` among them is the message when the call gave none.
    """
    fields = contextstack.get_fields()
    late = contextstack.late_fields()
    # (``kw`` is the call's own fresh dict: used as it is when nothing else adds fields)
    merged = {**fields, **late, **bound, **kw} if fields or late or bound else kw
    if event is None:
        event = merged.pop("event", "")
    elif "event" in merged:
        del merged["event"]
    return make_record(_METHOD_LEVELS.get(method_name, "info"), event, logger_name, merged)


def format_exception(exc_info: Any) -> str | None:
    """Render ``exc_info`` (``True``, an exception, or a ``sys.exc_info()`` tuple) as text."""
    try:
        if exc_info is True:
            exc_info = sys.exc_info()
        if isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        if not isinstance(exc_info, tuple) or exc_info[0] is None:
            return None
        return "".join(traceback.format_exception(*exc_info))
    except Exception:
        return safe_repr(exc_info)


def make_record(level: str, event: Any, logger_name: str, fields: dict[str, Any]) -> LogRecord:
    """Build a LogRecord from a level, message and fields, pulling out ``exc_info``."""
    exc_info = exception = None
    if "exc_info" in fields or "exception" in fields:  # (most records: neither, no pops)
        exc_info = fields.pop("exc_info", None)
        exception = fields.pop("exception", None)
    if exc_info:
        exception = format_exception(exc_info)
    elif exception is not None and not isinstance(exception, str):
        exception = (
            format_exception(exception)
            if isinstance(exception, BaseException)
            else safe_repr(exception)
        )
    trace_id, span_id = trace_ids()
    return LogRecord(
        timestamp=time.time(),
        level=level,
        event=event if type(event) is str else _message_text(event),
        logger=logger_name,
        fields=fields,
        trace_id=trace_id,
        span_id=span_id,
        exception=exception,
    )


def to_record(
    logger: Any, method_name: str, event_dict: EventDict
) -> tuple[tuple[LogRecord], dict[str, Any]]:
    """Final processor: the event dict becomes a LogRecord handed to the pipeline sink."""
    fields = event_dict if type(event_dict) is dict else dict(event_dict)
    event = fields.pop("event", "")
    level = _METHOD_LEVELS.get(method_name, "info")
    return (make_record(level, event, getattr(logger, "name", ""), fields),), {}


def _message_text(event: Any) -> str:
    try:
        text = str(event)
        if isinstance(text, str):
            return text
    except Exception:
        pass
    return safe_repr(event)


#: structlog method names to levels (the level methods, plus its aliases).
_METHOD_LEVELS = {
    **{name: name for name in LEVELS},
    "msg": "info",
    "warn": "warning",
    "exception": "error",
    "fatal": "critical",
}
