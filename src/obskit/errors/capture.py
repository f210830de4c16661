"""Turning an exception or a message into an :class:`~obskit.signals.ErrorEvent`.

One :class:`ErrorCapture` exists per obskit setup (rebuilt by ``init``); it holds the settings,
the per-code-location frame cache and the group store. A capture:

1. drops the event early if its type is in ``ignore_errors`` or ``sample_rate`` says so;
2. walks the exception chain (``__cause__``, else ``__context__`` unless suppressed; cycles and
   chains longer than :data:`MAX_CHAIN` are cut) and each traceback, using the frame cache;
3. computes the fingerprint (see :mod:`obskit.errors.fingerprint`), title and culprit;
4. attaches context, user, tags, breadcrumbs, trace ids; lets ``before_send`` change or drop it;
5. counts it in its group and, within the group's export budget, emits it to the pipeline.

Data shared between events (frames, breadcrumbs) is scrubbed once, when cached, by the
pipeline's own scrubber, so the pipeline's scrub pass over the event is nearly free. Nothing
here raises into the application: a failure is reported through :mod:`obskit.diagnostics`.
"""

from __future__ import annotations

import random
import sys
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from obskit import contextstack, diagnostics
from obskit.errors import breadcrumbs
from obskit.errors.fingerprint import (
    collapse_recursion,
    fingerprint_for,
    parameterise_message,
)
from obskit.errors.frames import FrameCache, FrameInfo, walk_traceback
from obskit.errors.groups import GroupStore
from obskit.logging.processors import trace_ids
from obskit.scrubbing import ScrubbedMapping, ScrubbedSequence, safe_repr
from obskit.signals import ErrorEvent

if TYPE_CHECKING:
    from types import FrameType

    from obskit._runtime import Runtime

__all__ = ["MAX_CHAIN", "MAX_FRAMES", "ErrorCapture", "editable_copy"]

#: Exceptions kept from one chain (``__cause__`` / ``__context__``).
MAX_CHAIN = 10
#: Frames kept per exception in the event (the first and last halves); grouping sees them all.
MAX_FRAMES = 100
LEVELS = frozenset({"debug", "info", "warning", "error", "critical", "fatal"})
_TITLE_LENGTH = 200

Fingerprint = Sequence[str] | str | None


class ErrorCapture:
    """Capture for one obskit setup: its settings, frame cache and group store."""

    def __init__(self, runtime: Runtime, clock: Callable[[], float]) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.scrubber = runtime.pipeline.scrubber
        self.clock = clock
        self.frames = FrameCache(self.scrubber, settings.in_app_include, settings.in_app_exclude)
        self.groups = GroupStore(clock, settings.max_events_per_group_per_minute)
        self.sample_rate = settings.sample_rate
        self.before_send = settings.before_send
        self.include_locals = settings.include_locals
        self.service = settings.service
        self.environment = settings.environment
        self.release = settings.release
        self._ignored_types = tuple(t for t in settings.ignore_errors if isinstance(t, type))
        self._ignored_names = frozenset(n for n in settings.ignore_errors if isinstance(n, str))
        self._ignore_cache: dict[type, bool] = {}

    # -- exceptions --------------------------------------------------------------------------

    def capture_exception(
        self,
        exc: BaseException,
        *,
        level: str = "error",
        fingerprint: Fingerprint = None,
        context: dict[str, Any] | None = None,
        mechanism: dict[str, Any] | None = None,
    ) -> ErrorEvent | None:
        """Build, group and emit an event for ``exc``; ``None`` if ignored, sampled or dropped."""
        if self._ignored(type(exc)) or self._sampled_out():
            return None
        try:
            exc.__obskit_captured__ = True  # type: ignore[attr-defined]
        except Exception:
            pass
        chain = _exception_chain(exc)
        entries: list[ScrubbedMapping] = []
        parts: list[str] = []
        frame_lists = [self._frames_of(item) for item in chain]
        any_in_app = any(info.in_app for infos in frame_lists for info, _ in infos)
        culprit = ""
        for position, (item, infos) in enumerate(zip(chain, frame_lists, strict=True)):
            value = self.scrubber.clean_text(_safe_str(item))
            parts.append("type:" + _type_name(type(item)))
            keys = [info.group_key for info, _ in infos if info.in_app or not any_in_app]
            if keys:
                parts.extend(collapse_recursion(keys))
            else:
                parts.append("value:" + parameterise_message(value))
            if position == 0:
                culprit = _culprit(infos)
            entries.append(self._exception_entry(item, value, infos, mechanism, position))
        outer_type = type(exc).__name__
        outer_value = entries[0]["value"]
        title = _first_line(f"{outer_type}: {outer_value}" if outer_value else outer_type)
        event = self._event(level, fingerprint_for(parts, fingerprint), title, culprit, context)
        event.message = outer_value
        event.exceptions = list(entries)
        hint = {"exc_info": (type(exc), exc, exc.__traceback__), "mechanism": mechanism}
        return self._finish(event, hint)

    def _frames_of(self, exc: BaseException) -> list[tuple[FrameInfo, FrameType]]:
        info = self.frames.info
        return [
            (info(code, line, frame), frame)
            for code, line, frame in walk_traceback(exc.__traceback__)
        ]

    def _exception_entry(
        self,
        exc: BaseException,
        value: str,
        infos: list[tuple[FrameInfo, FrameType]],
        mechanism: dict[str, Any] | None,
        position: int,
    ) -> ScrubbedMapping:
        kept = infos
        omitted: list[int] | None = None
        if len(infos) > MAX_FRAMES:
            half = MAX_FRAMES // 2
            kept = infos[:half] + infos[-half:]
            omitted = [half, len(infos) - half]
        if self.include_locals:
            with_locals = self.frames.with_locals
            frames = [with_locals(i, f) if i.in_app else i.frame for i, f in kept]
        else:
            frames = [info.frame for info, _ in kept]
        frame_tuple = ScrubbedSequence(frames)
        frame_tuple.scrubber = self.scrubber
        kind = type(exc)
        entry: dict[str, Any] = {
            "type": kind.__qualname__,
            "module": kind.__module__,
            "value": value,
            "frames": frame_tuple,
        }
        if omitted is not None:
            entry["frames_omitted"] = ScrubbedSequence(omitted)
            entry["frames_omitted"].scrubber = self.scrubber
        if mechanism is not None and position == 0:
            entry["mechanism"] = self.scrubber.freeze(mechanism)
        return ScrubbedMapping(entry, self.scrubber)

    # -- messages ----------------------------------------------------------------------------

    def capture_message(
        self,
        message: Any,
        *,
        level: str = "info",
        fingerprint: Fingerprint = None,
        context: dict[str, Any] | None = None,
    ) -> ErrorEvent | None:
        """Build, group and emit an event for a message (grouped by its parameterised text)."""
        if self._sampled_out():
            return None
        text = self.scrubber.clean_text(message if isinstance(message, str) else _safe_str(message))
        parts = ["message:" + parameterise_message(text)]
        culprit = _caller_culprit()
        event = self._event(
            level, fingerprint_for(parts, fingerprint), _first_line(text), culprit, context
        )
        event.message = text
        return self._finish(event, {"message": message})

    # -- shared steps ------------------------------------------------------------------------

    def _event(
        self,
        level: str,
        fingerprint: str,
        title: str,
        culprit: str,
        context: dict[str, Any] | None,
    ) -> ErrorEvent:
        fields = contextstack.get_fields()
        merged = dict(fields)
        user = tags = None
        if context:
            user = context.pop("user", None)
            tags = context.pop("tags", None)
            merged.update(context)
        trace_id, span_id = trace_ids()
        return ErrorEvent(
            event_id=uuid.UUID(int=random.getrandbits(128), version=4).hex,
            timestamp=self.clock(),
            level=_checked_level(level),
            fingerprint=fingerprint,
            title=title,
            culprit=culprit,
            context=merged,
            user=_user_from(user, merged),
            tags=dict(tags) if isinstance(tags, dict) else {},
            breadcrumbs=breadcrumbs.frozen_trail(self.scrubber),
            service=self.service,
            environment=self.environment,
            release=self.release,
            trace_id=trace_id,
            span_id=span_id,
        )

    def _finish(self, event: ErrorEvent, hint: dict[str, Any]) -> ErrorEvent | None:
        title = event.title
        if self.before_send is not None:
            edited = self._run_before_send(event, hint)
            if edited is None:
                return None
            event = edited
            title = self.scrubber.clean_text(event.title)  # the hook may have put anything there
        user = event.user.get("id") if isinstance(event.user, dict) else None
        recorded = self.groups.record(
            event.fingerprint,
            title=title,
            culprit=event.culprit,
            level=event.level,
            event_id=event.event_id,
            user=None if user is None else str(user),
            timestamp=event.timestamp,
        )
        event.regression = recorded.regression
        if recorded.export:
            self.runtime.pipeline.emit(event)
        return event

    def _run_before_send(self, event: ErrorEvent, hint: dict[str, Any]) -> ErrorEvent | None:
        hook = self.before_send
        assert hook is not None
        editable_copy(event)
        try:
            result = hook(event, hint)
        except Exception as exc:
            diagnostics.report("before_send", f"before_send raised {exc!r}; sent the event as is")
            return event
        if result is None or isinstance(result, ErrorEvent):
            return result
        diagnostics.report(
            "before_send",
            f"before_send returned {type(result).__name__}, expected an ErrorEvent or None; "
            "sent the event as is",
        )
        return event

    def _ignored(self, kind: type) -> bool:
        ignored = self._ignore_cache.get(kind)
        if ignored is None:
            ignored = issubclass(kind, self._ignored_types) or any(
                name in self._ignored_names
                for cls in kind.__mro__
                for name in (cls.__qualname__, _type_name(cls))
            )
            if len(self._ignore_cache) < 1000:
                self._ignore_cache[kind] = ignored
        return ignored

    def _sampled_out(self) -> bool:
        rate = self.sample_rate
        return rate < 1.0 and random.random() >= rate


def editable_copy(event: ErrorEvent) -> ErrorEvent:
    """Replace the event's shared, read-only parts with plain copies (before user code edits)."""
    event.exceptions = [_thaw(entry) for entry in event.exceptions]
    event.breadcrumbs = [_thaw(crumb) for crumb in event.breadcrumbs]
    return event


def _thaw(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _thaw(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thaw(item) for item in value]
    return value


def _exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes, outermost first; cycles and over-long chains are cut."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(chain) < MAX_CHAIN:
        chain.append(current)
        seen.add(id(current))
        following = current.__cause__
        if following is None and not current.__suppress_context__:
            following = current.__context__
        current = following if isinstance(following, BaseException) else None
    return chain


def _culprit(infos: list[tuple[FrameInfo, FrameType]]) -> str:
    for info, _ in reversed(infos):
        if info.in_app:
            return info.culprit
    return infos[-1][0].culprit if infos else ""


def _caller_culprit() -> str:
    """``module in function`` of the first caller outside obskit."""
    try:
        frame: FrameType | None = sys._getframe(2)
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            if not (isinstance(module, str) and module.split(".")[0] == "obskit"):
                code = frame.f_code
                return f"{module} in {getattr(code, 'co_qualname', code.co_name)}"
            frame = frame.f_back
    except Exception:
        pass
    return ""


def _type_name(kind: type) -> str:
    module = getattr(kind, "__module__", "")
    name = getattr(kind, "__qualname__", "?")
    return name if module in ("builtins", "__builtin__", "exceptions") else f"{module}.{name}"


def _safe_str(value: object) -> str:
    try:
        text = str(value)
        if isinstance(text, str):
            return text
    except Exception:
        pass
    return f"<unprintable {safe_repr(type(value).__name__)}>"


def _first_line(text: str) -> str:
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= _TITLE_LENGTH else line[: _TITLE_LENGTH - 3] + "..."


def _checked_level(level: Any) -> str:
    if level in LEVELS:
        return str(level)
    name = str(level).lower() if isinstance(level, str) else ""
    if name in LEVELS:
        return name
    diagnostics.report("capture_level", f"unknown level {level!r} for a captured event; used error")
    return "error"


def _user_from(user: Any, fields: dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(user, dict):
        return dict(user)
    if user is not None:
        return {"id": user}
    found = fields.get("user")
    if isinstance(found, dict):
        return dict(found)
    if fields.get("user_id") is not None:
        return {"id": fields["user_id"]}
    return None
