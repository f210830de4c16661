"""W3C Trace Context in and out: ``traceparent`` / ``tracestate`` on requests and messages.

Both directions use OpenTelemetry's ``TraceContextTextMapPropagator`` (the W3C format only,
whatever ``OTEL_PROPAGATORS`` says, so what obskit reads and writes does not depend on the
environment). :func:`extract` is defensive, because its input comes from outside: oversized
values, non-ASCII and control characters are refused before the propagator parses the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from obskit import diagnostics

__all__ = ["extract", "inject"]

#: Longest values read (W3C: a version-00 ``traceparent`` is 55 characters; vendors should
#: propagate at least 512 characters of ``tracestate``).
MAX_TRACEPARENT = 256
MAX_TRACESTATE = 1024

_propagator = TraceContextTextMapPropagator()


def _clean(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or len(value) > limit or not value.isascii():
        return None
    return value if value.isprintable() else None


def extract(carrier: Mapping[str, str]) -> Any:
    """The OpenTelemetry context of a valid ``traceparent`` in ``carrier``, else ``None``.

    Keys are the lower-case header names. An invalid ``tracestate`` is dropped, not the parent.

    >>> trace_id = "0af7651916cd43dd8448eb211c80319c"
    >>> parent = extract({"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"})
    >>> format(trace.get_current_span(parent).get_span_context().trace_id, "032x")
    '0af7651916cd43dd8448eb211c80319c'
    >>> extract({"traceparent": f"00-{trace_id}-0000000000000000-01"}) is None  # zero span id
    True
    """
    try:
        traceparent = _clean(carrier.get("traceparent"), MAX_TRACEPARENT)
        if traceparent is None:
            return None
        clean = {"traceparent": traceparent}
        tracestate = _clean(carrier.get("tracestate"), MAX_TRACESTATE)
        if tracestate is not None:
            clean["tracestate"] = tracestate
        parent = _propagator.extract(clean)
        if not trace.get_current_span(parent).get_span_context().is_valid:
            return None
        return parent
    except Exception as exc:
        diagnostics.report("propagation", f"could not read a traceparent: {exc!r}")
        return None


def inject(headers: MutableMapping[str, Any], span: Any = None) -> None:
    """Write ``traceparent`` (and ``tracestate``) for ``span`` (default: the active one).

    Leaves ``headers`` alone when ``span`` has no valid context, and when they already carry
    a ``traceparent`` (the caller set one on purpose). Never raises.
    """
    try:
        if "traceparent" in headers:
            return
        context = trace.set_span_in_context(span) if span is not None else None
        _propagator.inject(headers, context=context)
    except Exception as exc:
        diagnostics.report("propagation", f"could not write a traceparent: {exc!r}")
