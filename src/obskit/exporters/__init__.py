"""Exporters: where signals go. Any object with ``export``, ``force_flush`` and ``shutdown`` is one.

Built in: :class:`ConsoleExporter`, :class:`JsonLinesExporter`, :class:`InMemoryExporter`,
:class:`SQLiteExporter` (the embedded store), :class:`OTLPExporter` (an OpenTelemetry
collector; the ``otlp`` extra), :class:`WebhookExporter` (JSON over HTTP),
:class:`SentryExporter` (error events to Sentry or GlitchTip). Every class is
imported on first use, so ``import obskit.exporters`` stays cheap. The protocol, the result
type and the name registry live in :mod:`obskit.exporting`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from obskit.exporters.console import ConsoleExporter
    from obskit.exporters.jsonl import JsonLinesExporter
    from obskit.exporters.memory import InMemoryExporter
    from obskit.exporters.otlp import OTLPExporter
    from obskit.exporters.sentry import SentryExporter
    from obskit.exporters.sqlite import SQLiteExporter
    from obskit.exporters.webhook import WebhookExporter

__all__ = [
    "ConsoleExporter",
    "InMemoryExporter",
    "JsonLinesExporter",
    "OTLPExporter",
    "SQLiteExporter",
    "SentryExporter",
    "WebhookExporter",
]

#: Exporter classes importable from this package, loaded only when first used.
_LAZY_CLASSES = {
    "ConsoleExporter": "obskit.exporters.console",
    "JsonLinesExporter": "obskit.exporters.jsonl",
    "InMemoryExporter": "obskit.exporters.memory",
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


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
