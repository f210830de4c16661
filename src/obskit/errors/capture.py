"""Turning an exception or a message into an :class:`~obskit.signals.ErrorEvent`.

One :class:`ErrorCapture` exists per obskit setup (rebuilt by ``init``); it holds the settings,
the per-code-location frame cache and the group store. A capture:

1. drops the event early if its type is in ``ignore_errors`` or ``sample_rate`` says so;
2. walks the exception chain and each traceback (:mod:`obskit.errors.chains`), looking frames
   up in the frame cache, and the chain's shape up in the shape cache;
3. takes the fingerprint and culprit from the shape (:mod:`obskit.errors.fingerprint`);
4. attaches context, user, tags, breadcrumbs, trace ids; lets ``before_send`` change or drop it;
5. counts it in its group and, within the group's export budget, emits it to the pipeline.

Data shared between events (frames, breadcrumbs) is scrubbed once, when cached, by the
pipeline's own scrubber, so the pipeline's scrub pass over the event is nearly free. Nothing
here raises into the application: a failure is reported through :mod:`obskit.diagnostics`.
"""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from obskit import contextstack, diagnostics, metrics
from obskit.errors import breadcrumbs
from obskit.errors.analysis import ChainAnalyser
from obskit.errors.chains import safe_str, type_name
from obskit.errors.fingerprint import fingerprint_for, parameterise_message, with_custom
from obskit.errors.frames import FrameCache
from obskit.errors.groups import GroupStore, user_key
from obskit.levels import canonical_level
from obskit.scrubbing import ScrubbedMapping
from obskit.signals import ErrorEvent
from obskit.tracing import trace_ids

if TYPE_CHECKING:
    from obskit._runtime import Runtime

__all__ = ["ErrorCapture", "editable_copy"]

#: One point per captured event, by group: the error rate alert rules read.
error_count = metrics.counter("obskit.errors", "{event}", "captured error events, by group")

_TITLE_LENGTH = 200
_NOT_YET = object()  # an exception not captured yet
_in_before_send = threading.local()

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
        self.tags = dict(settings.tags)
        self._ignored_types = tuple(t for t in settings.ignore_errors if isinstance(t, type))
        self._ignored_names = frozenset(n for n in settings.ignore_errors if isinstance(n, str))
        self._ignore_cache: dict[type, bool] = {}
        self.analyser = ChainAnalyser(self.frames)

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
        """Build, group and emit an event for ``exc``; ``None`` if ignored, sampled or dropped.

        An exception is captured once: capturing it again returns its first event (as
        sentry-sdk's dedupe does), so ``except: capture_exception()`` around instrumented code
        does not double it.
        """
        first = getattr(exc, "__obskit_event__", _NOT_YET)
        if first is None or isinstance(first, ErrorEvent):
            return first
        if self._ignored(type(exc)) or self._sampled_out():
            return None
        event = self._capture_exception(exc, level, fingerprint, context, mechanism)
        try:
            exc.__obskit_captured__ = True  # type: ignore[attr-defined]
            exc.__obskit_event__ = event  # type: ignore[attr-defined]
        except Exception:
            pass
        return event

    def _capture_exception(
        self,
        exc: BaseException,
        level: str,
        fingerprint: Fingerprint,
        context: dict[str, Any] | None,
        mechanism: dict[str, Any] | None,
    ) -> ErrorEvent | None:
        analyser = self.analyser
        group = analyser.analyse_group(exc)
        if group is None:
            analysis = analyser.analyse(exc)
            entries = analyser.entries(analysis, self.include_locals, mechanism)
            default = analysis.fingerprint
            named = analysis
        else:
            entries = analyser.group_entries(group, self.include_locals, mechanism)
            default = group.fingerprint
            named = group.main  # the title and culprit of its (first) failing leaf
        outer = named.items[0]
        outer_type = outer.kind if isinstance(outer.kind, str) else outer.kind.__name__
        title = _first_line(f"{outer_type}: {outer.value}" if outer.value else outer_type)
        event = self._event(
            level, with_custom(default, fingerprint), title, named.shape.culprit, context
        )
        event.message = outer.value
        event.exceptions = [ScrubbedMapping(entry, self.scrubber) for entry in entries]
        event.scrubbed_by = self.scrubber  # title, message, exceptions, breadcrumbs: all clean
        hint = {"exc_info": (type(exc), exc, exc.__traceback__), "mechanism": mechanism}
        return self._finish(event, hint)

    # -- messages ----------------------------------------------------------------------------

    def capture_message(
        self,
        message: Any,
        *,
        level: str = "info",
        fingerprint: Fingerprint = None,
        context: dict[str, Any] | None = None,
        culprit: str | None = None,
    ) -> ErrorEvent | None:
        """Build, group and emit an event for a message (grouped by its parameterised text)."""
        if self._sampled_out():
            return None
        text = self.scrubber.clean_text(message if isinstance(message, str) else safe_str(message))
        parts = ["message:" + parameterise_message(text)]
        culprit = culprit or _caller_culprit()
        event = self._event(
            level, fingerprint_for(parts, fingerprint), _first_line(text), culprit, context
        )
        event.message = text
        event.scrubbed_by = self.scrubber
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
        merged = dict(contextstack.get_fields())
        merged.update(contextstack.late_fields())
        user = tags = None
        if context:
            user = context.pop("user", None)
            tags = context.pop("tags", None)
            merged.update(context)
        trace_id, span_id = trace_ids()
        return ErrorEvent(
            event_id=f"{random.getrandbits(128):032x}",
            timestamp=self.clock(),
            level=_checked_level(level),
            fingerprint=fingerprint,
            title=title,
            culprit=culprit,
            context=merged,
            user=_user_from(user, merged),
            tags=self._tags(tags),
            breadcrumbs=breadcrumbs.frozen_trail(self.scrubber),
            trace_id=trace_id,
            span_id=span_id,
        )

    def _tags(self, call_tags: Any) -> dict[str, Any]:
        """``init(tags=)``, then the scope's tags (inner wins), then the call's own."""
        tags = dict(self.tags)
        tags.update(contextstack.get_tags())
        if isinstance(call_tags, dict):
            tags.update(call_tags)
        return tags

    def _finish(self, event: ErrorEvent, hint: dict[str, Any]) -> ErrorEvent | None:
        title = event.title
        if self.before_send is not None:
            edited = self._run_before_send(event, hint)
            if edited is None:
                return None
            event = edited
            title = self.scrubber.clean_text(event.title)  # the hook may have put anything there
        recorded = self.groups.record(
            event.fingerprint,
            title=title,
            culprit=event.culprit,
            level=event.level,
            event_id=event.event_id,
            user=user_key(event.user),
            timestamp=event.timestamp,
        )
        event.regression = recorded.regression
        # counted even when the group's export budget is spent
        error_count.add(fingerprint=event.fingerprint, level=event.level)
        if recorded.export:
            self.runtime.pipeline.emit(event)
        return event

    def _run_before_send(self, event: ErrorEvent, hint: dict[str, Any]) -> ErrorEvent | None:
        hook = self.before_send
        assert hook is not None
        if getattr(_in_before_send, "active", False):
            return event  # captured by the hook itself: sent without it, no recursion
        editable_copy(event)
        event.scrubbed_by = None  # whatever the hook writes is scrubbed again on emit
        _in_before_send.active = True
        try:
            result = hook(event, hint)
        except Exception as exc:
            diagnostics.report("before_send", f"before_send raised {exc!r}; sent the event as is")
            return event
        finally:
            _in_before_send.active = False
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
                for name in (cls.__qualname__, type_name(cls))
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


def _first_line(text: str) -> str:
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= _TITLE_LENGTH else line[: _TITLE_LENGTH - 3] + "..."


def _checked_level(level: Any) -> str:
    name = canonical_level(level)
    if name is not None:
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
