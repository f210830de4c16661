"""Outgoing HTTP calls, whatever the client: one span and one breadcrumb each, trace injected.

:class:`OutgoingCall` is what the httpx transports and the requests adapter share. A call
starts a client span (``GET api.example.com``: method and host, low-cardinality), writes
``traceparent`` into the outgoing headers so the server continues the trace, and when the call
ends sets the status and adds an ``http`` breadcrumb (method, URL, status, duration) to the
caller's trail. The URL is made safe first: no user info, no fragment, values of secret-looking
query parameters (``api_key``, ``token``, ``X-Amz-Signature``, ``sig``, ...) filtered. Bodies
and headers are never recorded. Nothing here raises into the caller.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from opentelemetry.trace import SpanKind

from obskit import _runtime, diagnostics, metrics, propagation, tracing
from obskit.errors import add_breadcrumb
from obskit.integrations._http import safe_method
from obskit.scrubbing import FILTERED, Scrubber

__all__ = ["OutgoingCall", "client_duration", "safe_url"]

#: OpenTelemetry's HTTP client duration (semantic conventions, stable).
client_duration = metrics.histogram(
    "http.client.request.duration", "s", "Duration of HTTP client requests."
)


def safe_url(url: str, scrubber: Scrubber | None = None) -> str:
    """``url`` without user info and fragment, secret query values filtered.

    >>> safe_url("https://ann:pw@api.example.com:8443/v1/items?page=2&api_key=abc#top")
    'https://api.example.com:8443/v1/items?page=2&api_key=[Filtered]'
    >>> safe_url("https://s3.example.com/k?X-Amz-Credential=AKIA&X-Amz-Signature=f00&sig=1")
    'https://s3.example.com/k?X-Amz-Credential=[Filtered]&X-Amz-Signature=[Filtered]&sig=[Filtered]'
    """
    scrubber = scrubber or Scrubber()
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid url>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    query = "&".join(_safe_pair(pair, scrubber) for pair in parts.query.split("&") if pair)
    return scrubber.clean_text(urlunsplit((parts.scheme, netloc, parts.path, query, "")))


def _safe_pair(pair: str, scrubber: Scrubber) -> str:
    key, sep, value = pair.partition("=")
    if not sep or not value:
        return pair
    name = unquote_plus(key).lower()
    # Besides the scrubber's deny keys: what signed cloud URLs carry.
    if scrubber.is_denied_key(name) or name == "sig" or "credential" in name:
        return f"{key}={FILTERED}"
    return pair


class OutgoingCall:
    """One outgoing request: its client span, timing and breadcrumb."""

    __slots__ = ("host", "method", "port", "span", "start", "url")

    def __init__(self, method: str, url: str, headers: MutableMapping[str, Any]) -> None:
        self.span: Any = None
        self.method = safe_method(str(method).upper())
        self.url = url
        self.host = ""
        self.port: int | None = None
        try:
            scrubber = _runtime.current().pipeline.scrubber
            self.url = safe_url(url, scrubber)
            parts = urlsplit(url)
            self.host = parts.hostname or ""
            attributes: dict[str, Any] = {
                "http.request.method": self.method,
                "url.full": self.url,
                "server.address": self.host,
            }
            self.port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
            if parts.port:
                attributes["server.port"] = parts.port
            self.span = tracing.get_tracer().start_span(
                f"{self.method} {self.host}", kind=SpanKind.CLIENT, attributes=attributes
            )
            propagation.inject(headers, self.span)
        except Exception as exc:
            diagnostics.report("http_client", f"could not start an outgoing-call span: {exc!r}")
        self.start = time.perf_counter()

    def end(self, status: int | None, exc: BaseException | None = None) -> None:
        """The call returned ``status`` (or failed with ``exc``): end the span, leave a crumb."""
        elapsed_s = time.perf_counter() - self.start
        duration_ms = round(elapsed_s * 1000.0, 3)
        labels: dict[str, Any] = {"http.request.method": self.method, "server.address": self.host}
        if self.port:
            labels["server.port"] = self.port
        if status is not None:
            labels["http.response.status_code"] = status
        if exc is not None:
            labels["error.type"] = type(exc).__qualname__
        elif status is not None and status >= 400:
            labels["error.type"] = str(status)
        try:
            data: dict[str, Any] = {"method": self.method, "url": self.url}
            level = "info"
            if status is not None:
                data["status_code"] = status
                level = "error" if status >= 500 else "warning" if status >= 400 else "info"
            if exc is not None:
                data["error"] = type(exc).__name__
                level = "error"
            data["duration_ms"] = duration_ms
            span = self.span
            if span is not None:
                if status is not None:
                    span.set_attribute("http.response.status_code", status)
                if exc is not None:
                    span.set_attribute("error.type", type(exc).__qualname__)
                    tracing.mark_span_failed(span, exc)
                elif status is not None and status >= 400:
                    span.set_attribute("error.type", str(status))
                    tracing.mark_span_failed(span, why=f"HTTP {status}")
            client_duration.record(elapsed_s, **labels)  # while the caller's span is current
            if span is not None:
                span.end()
            add_breadcrumb("http", f"{self.method} {self.url}", level, data)
        except Exception as problem:
            diagnostics.report("http_client", f"could not end an outgoing-call span: {problem!r}")
