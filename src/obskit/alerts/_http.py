"""One HTTP POST for every HTTP channel: a timeout, the receiver's own error message, and
whether trying again may help (429 and 5xx yes, other 4xx no).

The URL never appears in an error: a Slack, Teams or PagerDuty URL is a secret, and so are the
``Authorization`` headers this sends, which stay out of every message too.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

from obskit.alerts.notify import ChannelError, Notification

__all__ = ["Parts", "post", "post_json"]

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
    method: str = "POST",
) -> tuple[int, bytes]:
    """POST (or ``method``) ``body``; the status and response body, or a
    :class:`ChannelError`.

    ``explain`` turns an error answer's text into the service's own message (its JSON
    ``message``, say); without it, the start of the answer is the message.
    """
    request = urllib.request.Request(url, data=body, method=method)
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


class Parts:
    """Sends a notification as several requests (one per recipient, one per alert), each once.

    A failure that may pass makes the dispatcher retry the whole notification; the parts that
    already got through are remembered (the last few thousand) and not sent again, so nobody
    is texted twice. Every part is tried even when one fails; the error lists the failures.
    Used from the dispatcher's one worker thread.
    """

    def __init__(self, noun: str, remembered: int = 4096) -> None:
        self.noun = noun
        self.remembered = remembered
        self._done: OrderedDict[tuple[object, ...], None] = OrderedDict()

    def send(
        self, notification: Notification, parts: Sequence[tuple[str, Callable[[], object]]]
    ) -> None:
        """Call each part's sender unless it already succeeded for this notification."""
        failures: list[tuple[str, ChannelError]] = []
        for label, sender in parts:
            key = (notification.group_key, notification.reason, notification.timestamp, label)
            if key in self._done:
                continue
            try:
                sender()
            except ChannelError as exc:
                failures.append((label, exc))
                continue
            except OSError as exc:  # refused, unreachable, timed out: may pass later
                failures.append((label, ChannelError(f"{type(exc).__name__}: {exc}")))
                continue
            self._done[key] = None
            while len(self._done) > self.remembered:
                self._done.popitem(last=False)
        if failures:
            told = "; ".join(f"{label}: {exc}" for label, exc in failures)
            raise ChannelError(
                f"{len(failures)} of {len(parts)} {self.noun} not sent: {told}",
                retryable=any(exc.retryable for _, exc in failures),
            )
