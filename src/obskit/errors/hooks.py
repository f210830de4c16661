"""Global hooks: uncaught errors anywhere become events, and the previous hooks still run.

``obskit.init(install_hooks=True)`` (the default) chains, never replaces:

* ``sys.excepthook`` (uncaught exceptions in the main thread),
* ``threading.excepthook`` (uncaught exceptions in threads),
* ``sys.unraisablehook`` (exceptions Python cannot raise: in ``__del__``, callbacks, ...),
* asyncio's exception handler, for every event loop built on ``asyncio.BaseEventLoop``
  ("Task exception was never retrieved", exceptions in callbacks). asyncio has no global
  hook, so obskit wraps ``BaseEventLoop.call_exception_handler``; the loop's own handler (or
  the default one) still runs afterwards. Loops that do not derive from it (uvloop) are not
  covered: pass ``obskit.errors.asyncio_exception_handler`` to their ``set_exception_handler``.

Each hook captures, then calls what was installed before it. Uninstalling restores the
previous hook when obskit's is still the installed one; when something else was installed on
top in the meantime, obskit's hook stays in the chain but turns into a plain pass-through, so
nobody's hook is lost.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from obskit import diagnostics
from obskit.scrubbing import safe_repr
from obskit.tracing import is_failure

__all__ = ["ChainedHook", "HookSet", "handle_loop_exception"]

#: Captures an exception with a mechanism: ``capture(exc, mechanism, context)``.
Capture = Callable[[BaseException, dict[str, Any], dict[str, Any]], Any]


class ChainedHook:
    """A hook that handles its arguments with obskit, then calls the previous hook."""

    def __init__(
        self, name: str, previous: Callable[..., Any], handle: Callable[..., None]
    ) -> None:
        self.name = name
        self.previous = previous
        self.handle = handle
        self.active = True

    def __call__(self, *args: Any) -> Any:
        if self.active:
            try:
                self.handle(*args)
            except Exception as exc:
                diagnostics.report(f"hook.{self.name}", f"{self.name} capture failed: {exc!r}")
        return self.previous(*args)

    def __repr__(self) -> str:
        return f"<obskit {self.name} hook, then {self.previous!r}>"


@dataclass(frozen=True)
class _Slot:
    """Where a hook lives: how to read it and how to replace it."""

    name: str
    get: Callable[[], Any]
    put: Callable[[Any], None]
    is_method: bool = False


def _set_loop_handler(hook: Any) -> None:
    asyncio.BaseEventLoop.call_exception_handler = hook  # type: ignore[method-assign]


_SLOTS = (
    _Slot("sys.excepthook", lambda: sys.excepthook, lambda h: setattr(sys, "excepthook", h)),
    _Slot(
        "threading.excepthook",
        lambda: threading.excepthook,
        lambda h: setattr(threading, "excepthook", h),
    ),
    _Slot(
        "sys.unraisablehook",
        lambda: sys.unraisablehook,
        lambda h: setattr(sys, "unraisablehook", h),
    ),
    _Slot(
        "asyncio exception handler",
        lambda: asyncio.BaseEventLoop.call_exception_handler,
        _set_loop_handler,
        is_method=True,
    ),
)


class HookSet:
    """The hooks one ``init`` installed; ``uninstall`` takes them out again."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        self._installed: list[tuple[_Slot, ChainedHook, Any]] = []

    @property
    def names(self) -> list[str]:
        return [slot.name for slot, _, _ in self._installed]

    def install(self) -> list[str]:
        """Chain every hook; returns their names (what ``init`` reports it installed)."""
        handlers: tuple[Callable[..., None], ...] = (
            self._on_excepthook,
            self._on_thread_exception,
            self._on_unraisable,
            self._on_loop_exception,
        )
        for slot, handle in zip(_SLOTS, handlers, strict=True):
            hook = ChainedHook(slot.name, slot.get(), handle)
            installed = _as_method(hook) if slot.is_method else hook
            slot.put(installed)
            self._installed.append((slot, hook, installed))
        return self.names

    def uninstall(self) -> list[str]:
        """Take the hooks out (or make them pass-throughs); returns their names."""
        names = []
        for slot, hook, installed in reversed(self._installed):
            hook.active = False
            if slot.get() is installed:
                slot.put(hook.previous)
            names.append(slot.name)
        self._installed.clear()
        return names

    # -- handlers ----------------------------------------------------------------------------

    def _on_excepthook(self, kind: type, value: BaseException | None, tb: Any) -> None:
        if value is not None and _should_capture(value):
            self.capture(value, {"type": "sys.excepthook", "handled": False}, {})

    def _on_thread_exception(self, args: Any) -> None:
        value = getattr(args, "exc_value", None)
        if value is not None and _should_capture(value):
            thread = getattr(args, "thread", None)
            context = {"thread": thread.name} if thread is not None else {}
            self.capture(value, {"type": "threading.excepthook", "handled": False}, context)

    def _on_unraisable(self, args: Any) -> None:
        context = {
            "unraisable": getattr(args, "err_msg", None) or "Exception ignored in",
            "object": safe_repr(getattr(args, "object", None), 256),
        }
        value = getattr(args, "exc_value", None)
        if value is not None and _should_capture(value):
            self.capture(value, {"type": "sys.unraisablehook", "handled": False}, context)

    def _on_loop_exception(self, loop: Any, context: dict[str, Any]) -> None:
        handle_loop_exception(context, self.capture)


def handle_loop_exception(context: dict[str, Any], capture: Capture) -> None:
    """Capture the exception an asyncio loop reports to its exception handler.

    Reports without an exception ("Task was destroyed but it is pending!", unclosed
    resources) are warnings, not errors: they are left to the loop's own handler.
    """
    value = context.get("exception")
    if isinstance(value, BaseException) and _should_capture(value):
        extra = {"asyncio": str(context.get("message", ""))}
        capture(value, {"type": "asyncio", "handled": False}, extra)


def _should_capture(value: BaseException) -> bool:
    return is_failure(value) and not getattr(value, "__obskit_captured__", False)


def _as_method(hook: ChainedHook) -> Callable[..., Any]:
    """A plain function (so it binds as a method) that calls ``hook``."""

    def call_exception_handler(loop: Any, context: dict[str, Any]) -> Any:
        return hook(loop, context)

    call_exception_handler.__obskit_hook__ = hook  # type: ignore[attr-defined]
    return call_exception_handler
