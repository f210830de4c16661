"""The live setup: settings and pipeline, swapped atomically by ``init`` and ``shutdown``.

Before any ``init`` the first signal starts a default setup (console exporter, default
settings), so logging at import time works and nothing is silently lost.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from obskit import diagnostics
from obskit import pipeline as _pipeline
from obskit.pipeline import Pipeline
from obskit.scrubbing import Scrubber
from obskit.signals import Signal

if TYPE_CHECKING:
    from obskit.config import Settings
    from obskit.pipeline import Exporter

__all__ = ["Runtime", "current", "emit", "on_shutdown", "replace", "run_shutdown_hooks"]


@dataclass(slots=True)
class Runtime:
    settings: Settings
    pipeline: Pipeline


_current: Runtime | None = None
_lock = threading.RLock()


def _new_lock_in_child() -> None:
    global _lock
    _lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


def build(settings: Settings, exporters: list[Exporter]) -> Runtime:
    """A runtime (pipeline and scrubber) for ``settings``, not yet installed."""
    scrubber = Scrubber(
        enabled=settings.scrub,
        extra_deny_keys=settings.scrub_keys,
        allow_keys=settings.scrub_allow_keys,
        send_default_pii=settings.send_default_pii,
        max_string=settings.max_string_length,
    )
    pipe = Pipeline(
        exporters,
        scrubber=scrubber,
        max_queue_size=settings.queue_size,
        max_batch_size=settings.max_batch_size,
        schedule_delay_s=settings.schedule_delay_s,
        max_retry_s=settings.max_retry_s,
        spool_dir=settings.spool_dir,
    )
    _pipeline.exit_timeout_s = settings.shutdown_timeout_s
    return Runtime(settings=settings, pipeline=pipe)


def current() -> Runtime:
    """The installed runtime, starting the default one on first use."""
    runtime = _current
    if runtime is None:
        with _lock:
            runtime = _current
            if runtime is None:
                # pydantic is imported on first use only
                from obskit.config import settings_for_default_setup
                from obskit.exporters import ConsoleExporter

                runtime = build(settings_for_default_setup(), [ConsoleExporter()])
                replace(runtime)
    return runtime


def peek() -> Runtime | None:
    """The installed runtime, or ``None`` (never starts one)."""
    return _current


def replace(runtime: Runtime | None) -> Runtime | None:
    """Install ``runtime``; return the previous one (the caller shuts it down)."""
    global _current
    with _lock:
        previous, _current = _current, runtime
    return previous


def emit(signal: Signal) -> None:
    """Send a signal down the current pipeline. Never raises."""
    runtime = _current
    if runtime is None:
        runtime = current()
    runtime.pipeline.emit(signal)


#: What ``obskit.shutdown`` stops before the pipeline flushes: background threads of the
#: capabilities (health schedulers, alert evaluators). Each is called with its time budget.
_shutdown_hooks: list[Callable[[float], None]] = []


def on_shutdown(hook: Callable[[float], None]) -> Callable[[float], None]:
    """Register ``hook(timeout_s)`` to run at ``obskit.shutdown`` (idempotent; a decorator)."""
    if hook not in _shutdown_hooks:
        _shutdown_hooks.append(hook)
    return hook


def run_shutdown_hooks(timeout_s: float) -> None:
    """Run every shutdown hook within ``timeout_s`` in total; a failing hook is reported."""
    deadline = time.monotonic() + timeout_s
    for hook in list(_shutdown_hooks):
        try:
            hook(max(0.0, deadline - time.monotonic()))
        except Exception as exc:
            diagnostics.report("shutdown_hook", f"shutdown hook {hook!r} raised {exc!r}")
