"""The live setup: settings, one OpenTelemetry ``Resource`` and the pipeline, swapped
atomically by ``init`` and ``shutdown``.

The ``Resource`` (``service.name``, ``deployment.environment.name``, ``service.version``,
``service.instance.id``, plus ``OTEL_RESOURCE_ATTRIBUTES``) is built once per ``init`` and
handed to everyone from here: the pipeline stamps each signal's service identity from it,
exporters get it through ``set_resource``, and tracing builds its provider with it. Nothing
else reads the service name from the settings.

Before any ``init`` the first signal starts a default setup (console exporter, default
settings), so logging at import time works and nothing is silently lost.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from obskit import pipeline as _pipeline
from obskit.diagnostics import ConfigError
from obskit.exporting import (
    PROCESSOR_OPTIONS,
    create_exporter,
    is_exporter,
    processor_options,
)
from obskit.listeners import Listeners
from obskit.pipeline import Pipeline
from obskit.scrubbing import Scrubber
from obskit.signals import Signal

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource

    from obskit.config import Settings
    from obskit.exporting import Exporter

__all__ = [
    "Runtime",
    "build",
    "current",
    "emit",
    "make_exporters",
    "make_resource",
    "notify_shutdown",
    "peek",
    "processor_settings",
    "replace",
    "shutdown_listeners",
]

#: This process's ``service.instance.id`` (OpenTelemetry: unique per running instance).
INSTANCE_ID = str(uuid.uuid4())


@dataclass(slots=True)
class Runtime:
    settings: Settings
    resource: Resource
    pipeline: Pipeline

    @property
    def service(self) -> str:
        """``service.name`` of the resource."""
        return str(self.resource.attributes.get("service.name", ""))

    @property
    def release(self) -> str | None:
        """``service.version`` of the resource, if any."""
        value = self.resource.attributes.get("service.version")
        return None if value is None else str(value)


_current: Runtime | None = None
_lock = threading.RLock()


def _new_lock_in_child() -> None:
    global _lock
    _lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


def make_resource(settings: Settings) -> Resource:
    """The OpenTelemetry ``Resource`` for ``settings`` (``OTEL_RESOURCE_ATTRIBUTES`` merged)."""
    from opentelemetry.sdk.resources import Resource

    attributes: dict[str, Any] = {
        "service.name": settings.service,
        "deployment.environment.name": settings.environment,
        "service.instance.id": INSTANCE_ID,
    }
    if settings.release:
        attributes["service.version"] = settings.release
    # create() merges the environment's attributes under ours and adds telemetry.sdk.*.
    return Resource.create(attributes)


def make_exporters(settings: Settings) -> list[Exporter]:
    """The exporters ``settings`` names (built from ``exporter_options``) or holds."""
    exporters: list[Exporter] = []
    for item in settings.exporters:
        if isinstance(item, str):
            exporters.append(create_exporter(item, settings.exporter_options.get(item)))
        elif is_exporter(item):
            exporters.append(item)
        elif isinstance(item, type):
            raise ConfigError(
                f"exporters: {item.__name__} is an exporter class: pass an instance, "
                f"e.g. exporters=[{item.__name__}(...)]"
            )
        else:
            raise ConfigError(
                f"exporters: {item!r} is not an exporter (it needs export(batch), "
                "force_flush(timeout_s) and shutdown(timeout_s))"
            )
    return exporters


def processor_settings(settings: Settings, item: Any, exporter: Exporter) -> dict[str, Any]:
    """The batching of ``exporter``'s processor (``item`` is how ``settings.exporters`` names it).

    Each of :data:`~obskit.exporting.PROCESSOR_OPTIONS` comes from, first to last:
    ``exporter_options[name]``; the global setting if it was set (argument or ``OBSKIT_*``);
    the exporter class's ``processor_defaults``; the global default.
    """
    chosen = {name: getattr(settings, name) for name in PROCESSOR_OPTIONS}
    preferred = getattr(type(exporter), "processor_defaults", None)
    if isinstance(preferred, Mapping):
        owner = f"{type(exporter).__name__}.processor_defaults"
        for name, value in processor_options(owner, preferred).items():
            if name not in settings.model_fields_set:
                chosen[name] = value
    own = {}
    if isinstance(item, str):
        owner = f"exporter_options[{item!r}]"
        own = processor_options(owner, settings.exporter_options.get(item))
        chosen.update(own)
    if chosen["max_batch_size"] > chosen["max_queue_size"]:
        if "max_batch_size" not in own and "max_batch_size" not in settings.model_fields_set:
            chosen["max_batch_size"] = chosen["max_queue_size"]  # a preference, not a choice
        else:
            where = f"exporter_options[{item!r}]" if own else "obskit.init"
            raise ConfigError(
                f"{where}: max_batch_size {chosen['max_batch_size']} is more than max_queue_size "
                f"{chosen['max_queue_size']} for {type(exporter).__name__}, so a batch never "
                "fills; lower max_batch_size or raise max_queue_size"
            )
    return chosen


def build(settings: Settings, exporters: list[Exporter]) -> Runtime:
    """A runtime (resource, scrubber, pipeline) for ``settings``, not yet installed."""
    scrubber = Scrubber(
        scrub=settings.scrub,
        scrub_keys=settings.scrub_keys,
        scrub_allow_keys=settings.scrub_allow_keys,
        send_default_pii=settings.send_default_pii,
        max_string_length=settings.max_string_length,
    )
    resource = make_resource(settings)
    pipe = Pipeline(
        exporters,
        scrubber=scrubber,
        resource=resource,
        per_exporter=[
            processor_settings(settings, item, exporter)
            for item, exporter in zip(settings.exporters, exporters, strict=True)
        ],
        retry_max_elapsed_s=settings.retry_max_elapsed_s,
        spool_dir=settings.spool_dir,
    )
    _pipeline.exit_timeout_s = settings.shutdown_timeout_s
    return Runtime(settings=settings, resource=resource, pipeline=pipe)


def current() -> Runtime:
    """The installed runtime, starting the default one on first use."""
    runtime = _current
    if runtime is None:
        with _lock:
            runtime = _current
            if runtime is None:
                # pydantic is imported on first use only
                from obskit.config import Settings, settings_for_default_setup

                try:
                    runtime = build(settings_for_default_setup(), [create_exporter("console")])
                except ConfigError as exc:  # OBSKIT_* batching at odds: no init to raise from
                    from obskit import diagnostics

                    diagnostics.report("config.environment", f"{exc}; using the defaults")
                    runtime = build(Settings.model_construct(), [create_exporter("console")])
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


#: Called with a time budget (seconds) at ``obskit.shutdown``, before the pipeline flushes:
#: the capabilities stop their background threads (health schedulers, alert evaluators).
shutdown_listeners: Listeners[Callable[[float], None]] = Listeners("shutdown")


def notify_shutdown(timeout_s: float) -> None:
    """Run every shutdown listener within ``timeout_s`` in total; a failing one is reported."""
    deadline = time.monotonic() + timeout_s
    for listener in shutdown_listeners:
        try:
            listener(max(0.0, deadline - time.monotonic()))
        except Exception as exc:
            shutdown_listeners.report(listener, exc)
