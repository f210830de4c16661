"""One HTTP POST for every HTTP channel: a timeout, the receiver's own error message, and
whether trying again may help (429 and 5xx yes, other 4xx no).

The URL never appears in an error: a Slack, Teams or PagerDuty URL is a secret, and so are the
``Authorization`` headers this sends, which stay out of every message too.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

from obskit.alerts.notify import ChannelError

__all__ = ["post", "post_json"]

#: How much of an error answer is read to explain it.
ANSWER_BYTES = 4096


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout_s: float,
    *,
    content_type: str = "application/json",
    explain: Callable[[str], str] | None = None,
) -> tuple[int, bytes]:
    """POST ``body``; the status and response body, or a :class:`ChannelError`.

    ``explain`` turns an error answer's text into the service's own message (its JSON
    ``message``, say); without it, the start of the answer is the message.
    """
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", content_type)
    request.add_header("User-Agent", "obskit-alerts")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        try:
            answer = exc.read(ANSWER_BYTES).decode("utf-8", "replace").strip()
        except Exception:
            answer = ""
        if explain is not None and answer:
            try:
                answer = explain(answer)
            except Exception:  # an answer that is not what the service documents: show it raw
                pass
        message = f"HTTP {exc.code} {exc.reason}" + (f": {answer[:2048]}" if answer else "")
        raise ChannelError(message, retryable=exc.code == 429 or exc.code >= 500) from None


def post_json(
    url: str, body: bytes, headers: Mapping[str, str], timeout_s: float
) -> tuple[int, bytes]:
    """POST ``body`` as JSON (see :func:`post`)."""
    return post(url, body, headers, timeout_s)
