"""One HTTP POST with the standard library, for the webhook and OTLP/HTTP exporters."""

from __future__ import annotations

import email.message
import email.utils
import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["Answer", "parse_retry_after", "post", "redact"]


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back: a status, or ``status=None`` when no answer came at all."""

    status: int | None
    reason: str
    body: bytes = b""
    retry_after: str | None = None
    #: The answer's headers, names in lower case.
    headers: Mapping[str, str] = field(default_factory=dict)


def post(
    opener: urllib.request.OpenerDirector,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout_s: float,
) -> Answer:
    """POST ``body``; never raises for network trouble (that is ``Answer(status=None)``)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with opener.open(request, timeout=timeout_s) as response:
            headers = _lowered(response.headers)
            return Answer(response.status, response.reason, response.read(), None, headers)
    except urllib.error.HTTPError as error:
        headers = _lowered(error.headers)
        return Answer(error.code, str(error.reason), b"", headers.get("retry-after"), headers)
    except (OSError, http.client.HTTPException) as error:  # URLError is an OSError
        return Answer(None, str(getattr(error, "reason", None) or error))


def _lowered(headers: email.message.Message | None) -> dict[str, str]:
    return {name.lower(): str(value) for name, value in (headers or {}).items()}


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay seconds or an HTTP date).

    >>> parse_retry_after("7"), parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0)
    (7.0, 60.0)
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def redact(url: str) -> str:
    """``scheme://host:port/...``: enough to recognise a URL in a warning, no credentials.

    >>> redact("https://user:pw@hooks.example.com/services/T000/B000/XXXX")
    'https://hooks.example.com/...'
    """
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{'/...' if parts.path.strip('/') else ''}"
