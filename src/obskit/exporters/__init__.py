"""Exporters: where signals go. Any object with ``export``, ``force_flush`` and ``shutdown`` is one.

Built in: :class:`ConsoleExporter`, :class:`JsonLinesExporter`, :class:`InMemoryExporter`,
:class:`SQLiteExporter` (the embedded store), :class:`OTLPExporter` (an OpenTelemetry
collector; the ``otlp`` extra), :class:`WebhookExporter` (JSON over HTTP),
:class:`SentryExporter` (error events to Sentry or GlitchTip). The heavier ones are imported
on first use, so ``import obskit`` stays cheap.
Third-party exporters register under the entry point group ``obskit.exporters`` so that
``OBSKIT_EXPORTERS=console,mine`` finds them by name; a class there is built with
``Class.from_settings(settings)`` when it has that method, else with no arguments.
"""

from __future__ import annotations

import functools
import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from obskit.exporters.console import ConsoleExporter
from obskit.exporters.jsonl import JsonLinesExporter
from obskit.exporters.memory import InMemoryExporter
from obskit.pipeline import Exporter, ExportResult

if TYPE_CHECKING:
    from obskit.config import Settings
    from obskit.exporters.otlp import OTLPExporter
    from obskit.exporters.sentry import SentryExporter
    from obskit.exporters.sqlite import SQLiteExporter
    from obskit.exporters.webhook import WebhookExporter

__all__ = [
    "ConsoleExporter",
    "ExportResult",
    "Exporter",
    "InMemoryExporter",
    "JsonLinesExporter",
    "OTLPExporter",
    "SQLiteExporter",
    "SentryExporter",
    "WebhookExporter",
    "available_exporters",
    "create_exporter",
    "is_exporter",
]

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

#: Exporter classes importable from this package, loaded only when first used.
_LAZY_CLASSES = {
    "SQLiteExporter": "obskit.exporters.sqlite",
    "OTLPExporter": "obskit.exporters.otlp",
    "WebhookExporter": "obskit.exporters.webhook",
    "SentryExporter": "obskit.exporters.sentry",
}


def __getattr__(name: str) -> Any:
    module = _LAZY_CLASSES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


@functools.cache
def _plugin_exporters() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group="obskit.exporters")}


def available_exporters() -> set[str]:
    """Names usable in ``init(exporters=[...])`` and ``OBSKIT_EXPORTERS``."""
    return set(BUILTIN_EXPORTERS) | set(_plugin_exporters())


def is_exporter(obj: object) -> bool:
    """Whether ``obj`` has the three methods of the :class:`Exporter` protocol."""
    return all(callable(getattr(obj, m, None)) for m in ("export", "force_flush", "shutdown"))


def create_exporter(name: str, settings: Settings) -> Exporter:
    """Build the exporter registered as ``name``, configured from ``settings``."""
    if name in BUILTIN_EXPORTERS:
        module_name, _, class_name = BUILTIN_EXPORTERS[name].partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
    else:
        cls = _plugin_exporters()[name].load()
    from_settings = getattr(cls, "from_settings", None)
    exporter = from_settings(settings) if callable(from_settings) else cls()
    if not is_exporter(exporter):
        raise TypeError(f"exporter {name!r} ({cls!r}) does not implement the Exporter protocol")
    return exporter  # type: ignore[no-any-return]
