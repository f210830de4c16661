"""A requests adapter that gives every outgoing call a span and a breadcrumb, and injects the
trace.

Instrument a session (its adapters are wrapped, keeping their retries and pool settings)::

    session = instrument_session(requests.Session())
    session.get("https://api.example.com/v1/items", params={"page": 2})

Each request the adapter sends (every redirect hop) gets a client span ``GET api.example.com``
with the safe URL, status and error type; a ``traceparent`` header (unless the request already
has one); and an ``http`` breadcrumb in the caller's trail. Responses and exceptions come back
unchanged; the timing ends when the response headers arrive (``stream=True``) or the body is
read (the default). The module-level ``requests.get(...)`` functions use a fresh session each
time and are not instrumented: use a session.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import BaseAdapter, HTTPAdapter

from obskit.integrations._client import OutgoingCall

__all__ = ["ObskitAdapter", "instrument_session"]


class ObskitAdapter(BaseAdapter):  # type: ignore[misc,unused-ignore]
    """A transport adapter around ``adapter`` (default: a new ``HTTPAdapter``)."""

    def __init__(self, adapter: BaseAdapter | None = None) -> None:
        super().__init__()
        self.adapter = adapter if adapter is not None else HTTPAdapter()

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        call = OutgoingCall(request.method or "GET", request.url or "", request.headers)
        try:
            response = self.adapter.send(
                request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
            )
        except BaseException as exc:
            call.end(None, exc)
            raise
        call.end(response.status_code)
        return response

    def close(self) -> None:
        self.adapter.close()

    def __getattr__(self, name: str) -> Any:
        # What code reads off the adapter it mounted (max_retries, poolmanager, ...).
        if name == "adapter":
            raise AttributeError(name)
        return getattr(self.adapter, name)


def instrument_session(session: requests.Session) -> requests.Session:
    """Wrap each adapter ``session`` has mounted in an :class:`ObskitAdapter` (idempotent)."""
    for prefix, adapter in list(session.adapters.items()):
        if not isinstance(adapter, ObskitAdapter):
            session.mount(prefix, ObskitAdapter(adapter))
    return session
