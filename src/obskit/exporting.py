"""The seam between obskit and any backend: :class:`Exporter`, :class:`ExportResult`, and
the exporter-name registry.

An exporter is any object with ``export(batch)``, ``force_flush(timeout_s)`` and
``shutdown(timeout_s)``; its processor calls them only from its own worker thread.

Names usable in ``init(exporters=[...])`` and ``OBSKIT_EXPORTERS`` are the built-ins
(``console``, ``jsonl``, ``memory``, ``sqlite``, ``otlp``, ``webhook``, ``sentry``) and whatever
a third-party package registers under the entry point group ``obskit.exporters``. A named
exporter is built as ``Class(**options)`` with ``options`` taken from
``init(exporter_options={name: {...}})``, so a third-party exporter is configured exactly
like a built-in one. Modules are imported by name only when an exporter is built, which
keeps this module (and ``import obskit``) light.
"""

from __future__ import annotations

import enum
import functools
import importlib
import inspect
import os
import types
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from obskit.diagnostics import ConfigError, require_number
from obskit.signals import Signal

__all__ = [
    "BUILTIN_EXPORTERS",
    "LOCAL_FILE_BATCHING",
    "PROCESSOR_OPTIONS",
    "ExportResult",
    "Exporter",
    "ForkAware",
    "available_exporters",
    "create_exporter",
    "is_exporter",
    "processor_options",
    "reset_in_forked_children",
]


class ExportResult(enum.Enum):
    """What an exporter reports for one batch."""

    SUCCESS = "success"
    #: Transient (backend down, 429, 503): the batch is retried with backoff.
    RETRYABLE = "retryable"
    #: The backend refused the batch for good (400, bad schema): counted as failed.
    FAILURE = "failure"


@runtime_checkable
class Exporter(Protocol):
    """Delivers batches of signals somewhere. Called only from its processor's worker thread.

    Optional: ``set_resource(resource)``, called by the pipeline with the OpenTelemetry
    ``Resource`` of the current setup (service, environment, release, instance) before the
    first batch and again whenever ``init`` changes it; ``processor_defaults``, a class
    attribute mapping :data:`PROCESSOR_OPTIONS` names to the values this exporter prefers over
    the global defaults (a local file takes bigger, rarer batches than a remote backend).
    """

    def export(self, batch: Sequence[Signal]) -> ExportResult: ...

    def force_flush(self, timeout_s: float = 5.0) -> bool: ...

    def shutdown(self, timeout_s: float = 5.0) -> None: ...


#: Built-in exporters by name: "module:Class", imported only when used.
BUILTIN_EXPORTERS: dict[str, str] = {
    "console": "obskit.exporters.console:ConsoleExporter",
    "jsonl": "obskit.exporters.jsonl:JsonLinesExporter",
    "memory": "obskit.exporters.memory:InMemoryExporter",
    "sqlite": "obskit.exporters.sqlite:SQLiteExporter",
    "otlp": "obskit.exporters.otlp:OTLPExporter",
    "webhook": "obskit.exporters.webhook:WebhookExporter",
    "sentry": "obskit.exporters.sentry:SentryExporter",
}


#: The settings of an exporter's processor that ``init(exporter_options={name: {...}})`` may
#: set for that exporter alone, and an exporter class may prefer through its
#: ``processor_defaults``; the value says whether the setting is an integer.
PROCESSOR_OPTIONS: dict[str, bool] = {
    "max_queue_size": True,
    "max_batch_size": True,
    "schedule_delay_s": False,
}

#: What the exporters writing a local file (SQLite store, JSON lines) prefer: a batch costs
#: them a fixed ~100-150 us (a transaction, a locked append) however small, and a reader a
#: second behind loses nothing, so they batch bigger and rarer than a remote backend, whose
#: requests must stay small (collectors refuse requests over 4 MB).
LOCAL_FILE_BATCHING: Mapping[str, Any] = types.MappingProxyType(
    {"max_batch_size": 2048, "schedule_delay_s": 1.0}
)


def processor_options(owner: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The :data:`PROCESSOR_OPTIONS` among ``options``, checked (:class:`ConfigError` naming
    ``owner`` and the setting when one is not a finite number above zero).

    >>> processor_options("sqlite", {"path": "a.db", "max_batch_size": 4096})
    {'max_batch_size': 4096}
    >>> processor_options("sqlite", {"schedule_delay_s": "1s"})
    Traceback (most recent call last):
    ...
    obskit.diagnostics.ConfigError: sqlite: schedule_delay_s must be a finite number > 0, not '1s'
    """
    chosen = {name: value for name, value in (options or {}).items() if name in PROCESSOR_OPTIONS}
    for name, value in chosen.items():
        require_number(owner, name, value, integer=PROCESSOR_OPTIONS[name])
    return chosen


@functools.cache
def _plugin_exporters() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group="obskit.exporters")}


def available_exporters() -> set[str]:
    """Names usable in ``init(exporters=[...])`` and ``OBSKIT_EXPORTERS``."""
    return set(BUILTIN_EXPORTERS) | set(_plugin_exporters())


def is_exporter(obj: object) -> bool:
    """Whether ``obj`` is an exporter object: an instance with the three protocol methods."""
    if isinstance(obj, type):
        return False  # the class itself, not an instance of it
    return all(callable(getattr(obj, m, None)) for m in ("export", "force_flush", "shutdown"))


def exporter_class(name: str) -> type[Any]:
    """The class registered as ``name``; :class:`ConfigError` naming the choices if unknown."""
    if name in BUILTIN_EXPORTERS:
        module_name, _, class_name = BUILTIN_EXPORTERS[name].partition(":")
        return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]
    plugin = _plugin_exporters().get(name)
    if plugin is None:
        raise ConfigError(
            f"unknown exporter {name!r}; allowed names: {', '.join(sorted(available_exporters()))} "
            "(or pass an exporter object)"
        )
    return plugin.load()  # type: ignore[no-any-return]


def create_exporter(name: str, options: Mapping[str, Any] | None = None) -> Exporter:
    """Build the exporter registered as ``name`` as ``Class(**options)``.

    :data:`PROCESSOR_OPTIONS` among ``options`` are left out: they set the exporter's
    processor (the pipeline reads them). A wrong option raises :class:`ConfigError` listing
    the options the class takes.
    """
    cls = exporter_class(name)
    # the processor's settings among them are the pipeline's (see PROCESSOR_OPTIONS)
    options = {k: v for k, v in (options or {}).items() if k not in PROCESSOR_OPTIONS}
    try:
        exporter = cls(**options)
    except TypeError as exc:  # a wrong or missing option: say which, and what it takes
        accepted = _parameters(cls)
        unknown = sorted(set(options) - set(accepted if accepted is not None else options))
        detail = f"does not take {', '.join(map(repr, unknown))}" if unknown else f": {exc}"
        batching = ", ".join(PROCESSOR_OPTIONS)
        hint = f" (it takes: {', '.join(accepted)}; its processor: {batching})" if accepted else ""
        raise ConfigError(f"exporter_options[{name!r}]: {cls.__name__} {detail}{hint}") from None
    if not is_exporter(exporter):
        raise ConfigError(
            f"exporter {name!r} ({cls!r}) does not implement the Exporter protocol: it needs "
            "export(batch), force_flush(timeout_s) and shutdown(timeout_s)"
        )
    return exporter  # type: ignore[no-any-return]


def _parameters(cls: type[Any]) -> list[str] | None:
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


class ForkAware(Protocol):
    """An object holding locks, files or connections that a forked child must not share.

    It may also define ``_before_fork()`` and ``_after_fork_in_parent()`` (run in the
    forking process around the fork: to let a write finish and close what must not be
    inherited at all, as an SQLite connection).
    """

    def _after_fork_in_child(self) -> None: ...


_fork_aware: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def reset_in_forked_children(obj: ForkAware) -> None:
    """Call ``obj._after_fork_in_child()`` in every child this process forks.

    A lock some thread held at ``fork()`` stays held forever in the child (that thread does
    not exist there), and a connection or file position is the parent's: each exporter gives
    itself fresh ones. These run before the processors start their new workers.
    """
    _fork_aware.add(obj)


def _each(method: str) -> None:
    for obj in list(_fork_aware):
        hook = getattr(obj, method, None)
        if hook is not None:
            try:
                hook()
            except Exception:  # a broken hook must not break the fork
                pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=lambda: _each("_before_fork"),
        after_in_parent=lambda: _each("_after_fork_in_parent"),
        after_in_child=lambda: _each("_after_fork_in_child"),
    )
