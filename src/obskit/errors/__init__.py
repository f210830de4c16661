"""Error capture: events with fingerprint grouping, breadcrumbs, scrubbing and global hooks.

::

    try:
        charge(order)
    except PaymentError:
        event = obskit.capture_exception()          # the exception being handled
    obskit.add_breadcrumb("db", "SELECT cart", data={"rows": 3})
    obskit.capture_message("cache cold", level="warning")
    for group in obskit.errors.groups():            # grouped issues, most recent first
        print(group.count, group.title, group.fingerprint[:12])
    obskit.errors.resolve(group.fingerprint)        # seen again -> flagged as a regression

The modules: :mod:`~obskit.errors.capture` builds events; :mod:`~obskit.errors.chains` walks
exception chains and caches what a crash site decides; :mod:`~obskit.errors.fingerprint` holds
the grouping rules; :mod:`~obskit.errors.frames` and :mod:`~obskit.errors.source` read stack
frames and source statements; :mod:`~obskit.errors.breadcrumbs` keeps the trail;
:mod:`~obskit.errors.groups` counts groups; :mod:`~obskit.errors.hooks` chains the
interpreter's global hooks. See docs/errors.md.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from obskit import _runtime, diagnostics, logging, tracing
from obskit.errors import breadcrumbs, source
from obskit.errors.breadcrumbs import add_breadcrumb
from obskit.errors.capture import ErrorCapture, Fingerprint
from obskit.errors.groups import ErrorGroup
from obskit.errors.hooks import HookSet, handle_loop_exception
from obskit.signals import ErrorEvent
from obskit.tracing import is_failure

if TYPE_CHECKING:
    from obskit.config import Settings

# configure(), reset() and current() are what obskit.init/shutdown call: plumbing, not API.
__all__ = [
    "ErrorEvent",
    "ErrorGroup",
    "add_breadcrumb",
    "asyncio_exception_handler",
    "capture_exception",
    "capture_failure",
    "capture_message",
    "get_group",
    "groups",
    "installed_hooks",
    "resolve",
    "uninstall_hooks",
]

_lock = threading.RLock()
_capture: ErrorCapture | None = None
_hooks: HookSet | None = None
_clock: Callable[[], float] = time.time


def current() -> ErrorCapture:
    """The capture state of the live obskit setup (rebuilt when ``init`` replaced it)."""
    runtime = _runtime.current()
    state = _capture
    if state is None or state.runtime is not runtime:
        state = _rebuild(runtime)
    return state


def _rebuild(runtime: _runtime.Runtime) -> ErrorCapture:
    global _capture
    with _lock:
        state = _capture
        if state is None or state.runtime is not runtime:
            state = _capture = ErrorCapture(runtime, _clock)
            settings = runtime.settings
            breadcrumbs.settings = breadcrumbs.BreadcrumbSettings(
                settings.max_breadcrumbs, settings.before_breadcrumb, _clock
            )
        return state


def configure(settings: Settings) -> list[str]:
    """Set errors up for the setup ``init`` just installed; returns the hooks it installed."""
    global _hooks
    with _lock:
        uninstall_hooks()
        _rebuild(_runtime.current())
        if settings.install_hooks:
            _hooks = HookSet(_capture_unhandled)
            return _hooks.install()
        return []


def uninstall_hooks() -> list[str]:
    """Take out the global hooks ``init`` installed (``shutdown`` does this)."""
    global _hooks
    with _lock:
        hooks, _hooks = _hooks, None
        return hooks.uninstall() if hooks is not None else []


def reset() -> None:
    """Forget everything (hooks, groups, caches, clock, this trail): what ``shutdown`` calls."""
    global _capture, _clock
    with _lock:
        uninstall_hooks()
        _capture = None
        _clock = time.time
        breadcrumbs.settings = breadcrumbs.BreadcrumbSettings()
        breadcrumbs.clear()  # the calling context's trail (other contexts end on their own)


def installed_hooks() -> list[str]:
    """Names of the global hooks currently installed by obskit."""
    hooks = _hooks
    return hooks.names if hooks is not None else []


def _set_clock(clock: Callable[[], float] | None) -> None:
    """Use ``clock`` for event times, group histories and rate limits (``None``: real time).

    For tests: drive time instead of sleeping. ``shutdown`` restores real time.
    """
    global _clock
    with _lock:
        _clock = clock or time.time
        state = current()
        state.clock = state.groups.clock = _clock
        breadcrumbs.settings.clock = _clock


# -- the API -------------------------------------------------------------------------------


def capture_exception(
    exc: BaseException | None = None,
    *,
    level: str = "error",
    fingerprint: Fingerprint = None,
    **context: Any,
) -> ErrorEvent | None:
    """Capture ``exc`` (the exception being handled when ``None``) as a grouped event.

    ``fingerprint`` (a list of strings, ``"{{ default }}"`` for the default) overrides the
    grouping; ``user=`` and ``tags=`` set those fields; other keywords join the context.
    Returns the event, or ``None`` when it was ignored, sampled out or dropped by
    ``before_send``. Never raises.
    """
    try:
        if exc is None:
            exc = sys.exc_info()[1]
            if exc is None:
                diagnostics.report(
                    "capture_no_exception", "capture_exception() called with no exception"
                )
                return None
        if not isinstance(exc, BaseException):
            diagnostics.report(
                "capture_not_exception",
                f"capture_exception() needs an exception, got {type(exc).__name__}; ignored",
            )
            return None
        event = current().capture_exception(
            exc, level=level, fingerprint=fingerprint, context=context
        )
        # The exception event on the active span, linked to its error group.
        link = {"obskit.fingerprint": event.fingerprint} if event is not None else None
        tracing.record_exception_on_span(exc, link)
        return event
    except Exception as problem:
        diagnostics.report("capture_exception", f"could not capture an exception: {problem!r}")
        return None


def capture_message(
    message: str,
    level: str = "info",
    *,
    fingerprint: Fingerprint = None,
    culprit: str | None = None,
    **context: Any,
) -> ErrorEvent | None:
    """Capture a message as an event, grouped by its text with variable parts removed.

    ``culprit`` names where it happened (default: the calling function).
    """
    try:
        return current().capture_message(
            message, level=level, fingerprint=fingerprint, context=context, culprit=culprit
        )
    except Exception as problem:
        diagnostics.report("capture_message", f"could not capture a message: {problem!r}")
        return None


def groups(since: float | None = None) -> list[ErrorGroup]:
    """Every error group of this setup (those seen at or after the UNIX time ``since``, when
    given), most recently seen first."""
    return current().groups.groups(since)


def get_group(fingerprint: str) -> ErrorGroup | None:
    """One group, by fingerprint or a unique prefix of it (6 characters or more)."""
    return current().groups.get(fingerprint)


def resolve(fingerprint: str) -> bool:
    """Mark a group resolved; its next event is flagged as a regression. ``False`` if unknown."""
    return current().groups.resolve(fingerprint)


def capture_failure(exc: BaseException, **context: Any) -> None:
    """Capture an exception escaping instrumented code once, however many layers it crosses.

    What ``@instrument``, ``obskit.request`` and the integrations call; exits and
    cancellations are not failures (:func:`obskit.tracing.is_failure`). Never raises.
    """
    if not is_failure(exc):
        return
    try:
        if getattr(exc, "__obskit_captured__", False):
            return
        exc.__obskit_captured__ = True  # type: ignore[attr-defined]
    except Exception:
        pass
    capture_exception(exc, **context)


def asyncio_exception_handler(loop: Any, context: dict[str, Any]) -> None:
    """An exception handler for loops obskit's global hook does not reach (uvloop).

    It captures, then runs the loop's default handler.
    """
    try:
        handle_loop_exception(context, _capture_unhandled)
    except Exception as exc:
        diagnostics.report("hook.asyncio", f"asyncio capture failed: {exc!r}")
    loop.default_exception_handler(context)


def _capture_unhandled(
    exc: BaseException, mechanism: dict[str, Any], context: dict[str, Any]
) -> None:
    current().capture_exception(exc, mechanism=mechanism, context=dict(context))


def _after_fork_in_child() -> None:
    """A forked child starts its own groups and caches, with fresh locks."""
    global _capture, _lock
    _lock = threading.RLock()
    _capture = None
    source.reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

# Automatic breadcrumbs from log records (instrumentation, above errors, adds the ones from
# @instrument calls and obskit.request scopes to its own listeners).
logging.record_listeners.add(breadcrumbs.on_log_record)
