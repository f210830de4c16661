"""WebhookExporter: each batch as one JSON document, POSTed to a URL.

The body is ``{"sent_at": "<RFC 3339>", "count": n, "signals": [...]}``, each signal in its
``to_dict()`` form (the same as a JSON line of :class:`~obskit.exporters.JsonLinesExporter`).
Standard library only (``urllib``).

Answers: 2xx delivered; 429 and 5xx retried by the processor with backoff, waiting at least
what a ``Retry-After`` header asks for; any other status (400, 401, 404, 413, a 3xx) is
permanent, the batch is counted failed. A connection that cannot be made, or times out, is
retried. Warnings name the host only: webhook paths often carry a secret.
"""

from __future__ import annotations

import gzip as gzip_module
import ssl
import time
import urllib.request
from collections.abc import Collection, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from obskit import diagnostics
from obskit.diagnostics import ConfigError, require_kinds, require_number
from obskit.exporters._http import parse_retry_after, post, redact
from obskit.exporters._render import _encode
from obskit.exporting import ExportResult
from obskit.scrubbing import safe_repr
from obskit.signals import Signal, iso_time

__all__ = ["WebhookExporter"]


class WebhookExporter:
    """POSTs batches of signals as JSON to ``url``.

    ``headers`` are sent with every request (an ``Authorization`` header, say); ``gzip=True``
    compresses bodies (``Content-Encoding: gzip``); ``kinds`` limits which signal kinds are
    sent (default: all); ``certificate`` is a CA bundle to trust for ``https://``.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        gzip: bool = False,
        timeout_s: float = 10.0,
        kinds: Collection[str] | None = None,
        certificate: str | None = None,
    ) -> None:
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise ConfigError(f"WebhookExporter: {url!r} is not an http:// or https:// URL")
        require_number("WebhookExporter", "timeout_s", timeout_s)
        from obskit.exporters._otlp_config import split_credentials

        url, authorization = split_credentials(url)  # never in the clear, nor in warnings
        self.url = url
        self.gzip = gzip
        self.timeout_s = timeout_s
        self.kinds = require_kinds("WebhookExporter", kinds)
        self.headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "obskit-webhook-exporter/0.1",
            **({"Authorization": authorization} if authorization else {}),
            **(headers or {}),
        }
        if gzip:
            self.headers["Content-Encoding"] = "gzip"
        handlers: list[Any] = []
        if scheme == "https":
            context = ssl.create_default_context(cafile=certificate)
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)
        #: After a RETRYABLE answer: what ``Retry-After`` asked for (read by the processor).
        self.retry_after_s: float | None = None

    def __repr__(self) -> str:
        return f"WebhookExporter({redact(self.url)})"

    def export(self, batch: Sequence[Signal]) -> ExportResult:
        self.retry_after_s = None
        kinds = self.kinds
        signals = [s for s in batch if kinds is None or s.kind in kinds]
        if not signals:
            return ExportResult.SUCCESS
        body = self._body(signals)
        answer = post(self._opener, self.url, body, self.headers, self.timeout_s)
        where = f"WebhookExporter({redact(self.url)})"
        if answer.status is None:
            diagnostics.report(
                "webhook.unreachable", f"{where}: cannot reach it: {answer.reason}; retrying"
            )
            return ExportResult.RETRYABLE
        if 200 <= answer.status < 300:
            return ExportResult.SUCCESS
        if answer.status == 429 or answer.status >= 500:
            self.retry_after_s = parse_retry_after(answer.retry_after)
            diagnostics.report(
                f"webhook.http_{answer.status}",
                f"{where}: HTTP {answer.status} {answer.reason}; retrying",
            )
            return ExportResult.RETRYABLE
        diagnostics.report(
            f"webhook.http_{answer.status}",
            f"{where}: HTTP {answer.status} {answer.reason}; batch dropped (not retryable)",
        )
        return ExportResult.FAILURE

    def _body(self, signals: list[Signal]) -> bytes:
        items = []
        for signal in signals:
            try:
                items.append(signal.to_dict())
            except Exception:
                items.append({"signal": signal.kind, "unrenderable": safe_repr(signal, 4096)})
        document = {"sent_at": iso_time(time.time()), "count": len(items), "signals": items}
        data = _encode(document).encode("utf-8")
        return gzip_module.compress(data, compresslevel=5) if self.gzip else data

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        return True

    def shutdown(self, timeout_s: float = 5.0) -> None:
        return None
