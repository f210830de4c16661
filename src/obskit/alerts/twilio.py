"""SMS through Twilio's Messages API: one short message per recipient.

``POST https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded
``To``, ``From`` (or ``MessagingServiceSid``) and ``Body``, with HTTP basic auth: the account
SID and its auth token, or an API key SID and its secret. Twilio answers 201 with the message,
or an error whose JSON carries ``code`` and ``message``; that message is what a failure says.

An SMS is short on purpose: the title, the first alert's summary, the outcome of the alerts'
actions (``on_fire``/``on_resolve``) and the runbook link, cut
to ``max_segments`` segments (160 GSM-7 characters in one segment, 153 each when split; 70 and
67 UTF-16 units once any character is outside GSM-7). The summary is cut, never the link.
A notification is retried as a whole when a recipient's message may pass on a later try;
recipients already reached are not texted twice.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Callable, Sequence

from obskit.alerts._http import Parts, post
from obskit.alerts._render import is_link, runbook_urls, summary
from obskit.alerts.notify import Notification
from obskit.diagnostics import ConfigError, require_number

__all__ = ["TwilioSMSChannel", "sms_segments"]

TWILIO_API = "https://api.twilio.com"
E164 = re.compile(r"\+[1-9]\d{1,14}")
ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
API_KEY_SID = re.compile(r"SK[0-9a-fA-F]{32}")
SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
ALPHANUMERIC_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
#: GSM 03.38: the basic set (one septet each) and the extension set (two: escape + char).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")
#: Twilio refuses a Body longer than this.
MAX_BODY = 1600


def sms_segments(text: str) -> int:
    """How many SMS segments ``text`` takes (GSM-7 when it can, else UCS-2).

    >>> sms_segments("x" * 160), sms_segments("x" * 161), sms_segments("\u00e9t\u00e9 \u2713")
    (1, 2, 1)
    >>> sms_segments("\u2713" * 71)
    2
    """
    if all(c in GSM_BASIC or c in GSM_EXTENDED for c in text):
        units, single, part = sum(2 if c in GSM_EXTENDED else 1 for c in text), 160, 153
    else:
        units, single, part = len(text.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else -(-units // part)


def fit(head: str, tail: str, max_segments: int) -> str:
    """``head + tail`` in ``max_segments`` segments: ``head`` is cut first, then ``tail``."""
    text = head + tail
    if sms_segments(text) <= max_segments and len(text) <= MAX_BODY:
        return text
    ellipsis = "..."
    low, high = 0, len(head)
    while low < high:  # the longest start of head that fits with the tail
        middle = (low + high + 1) // 2
        candidate = head[:middle].rstrip() + ellipsis + tail
        if sms_segments(candidate) <= max_segments and len(candidate) <= MAX_BODY:
            low = middle
        else:
            high = middle - 1
    if low == 0 and tail:
        return fit(head, "", max_segments)  # not even the link fits: the words matter more
    return head[:low].rstrip() + ellipsis + tail


class TwilioSMSChannel:
    """Texts each notification to every number in ``to`` through Twilio (one message each).

    ``auth_token`` (with the account SID) or ``api_key_sid`` and ``api_key_secret`` sign in;
    ``from_`` is a Twilio number in E.164 form (or an alphanumeric sender ID), or give
    ``messaging_service_sid`` instead. Numbers must be E.164: ``+`` country code and number.

    >>> from obskit.signals import Alert
    >>> sms = TwilioSMSChannel("AC" + "0" * 32, auth_token="t0ken", to=["+14155550100"],
    ...                        from_="+14155550199")
    >>> alert = Alert(timestamp=0, rule="disk_full", state="firing", severity="critical",
    ...               annotations={"summary": "db-1 /var is 97% full",
    ...                            "runbook_url": "https://wiki.example/disk"})
    >>> sms.text(Notification("sms", "first", [alert]))
    '[FIRING:1] disk_full: db-1 /var is 97% full https://wiki.example/disk'
    >>> sms
    TwilioSMSChannel(to=['+14155550100'], credentials=<hidden>)
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str | None = None,
        *,
        to: str | Sequence[str],
        from_: str | None = None,
        messaging_service_sid: str | None = None,
        api_key_sid: str | None = None,
        api_key_secret: str | None = None,
        max_segments: int = 2,
        url: str = TWILIO_API,
        timeout_s: float = 10.0,
        send_resolved: bool = True,
    ) -> None:
        owner = "TwilioSMSChannel"
        if not isinstance(account_sid, str) or not ACCOUNT_SID.fullmatch(account_sid):
            raise ConfigError(
                f"{owner}: account_sid must be the Account SID from the Twilio Console "
                "('AC' and 32 hex characters), also when signing in with an API key"
            )
        if api_key_sid is None and api_key_secret is None:
            if not auth_token:
                raise ConfigError(
                    f"{owner}: give auth_token (the account's auth token), or api_key_sid and "
                    "api_key_secret (an API key)"
                )
            user, secret = account_sid, auth_token
        else:
            if auth_token is not None:
                raise ConfigError(f"{owner}: give auth_token or an API key, not both")
            if not isinstance(api_key_sid, str) or not API_KEY_SID.fullmatch(api_key_sid):
                raise ConfigError(f"{owner}: api_key_sid must be an API key SID ('SK' and 32 hex)")
            if not api_key_secret:
                raise ConfigError(
                    f"{owner}: api_key_secret is missing (shown once at key creation)"
                )
            user, secret = api_key_sid, api_key_secret
        numbers = [to] if isinstance(to, str) else list(to)
        if not numbers:
            raise ConfigError(f"{owner}: to needs at least one phone number")
        for number in numbers:
            if not isinstance(number, str) or not E164.fullmatch(number):
                raise ConfigError(
                    f"{owner}: to number {number!r} is not E.164: write '+', the country code "
                    "and the number, no spaces or dashes (e.g. '+14155550100')"
                )
        if (from_ is None) == (messaging_service_sid is None):
            raise ConfigError(f"{owner}: give from_ (a Twilio number) or messaging_service_sid")
        if from_ is not None and not (
            E164.fullmatch(from_) or ALPHANUMERIC_SENDER.fullmatch(from_)
        ):
            raise ConfigError(
                f"{owner}: from_ {from_!r} must be a Twilio number in E.164 form (e.g. "
                "'+14155550199') or an alphanumeric sender ID (up to 11 letters and digits)"
            )
        if messaging_service_sid is not None and not SERVICE_SID.fullmatch(messaging_service_sid):
            raise ConfigError(f"{owner}: messaging_service_sid must be 'MG' and 32 hex characters")
        require_number(owner, "max_segments", max_segments, integer=True)
        require_number(owner, "timeout_s", timeout_s)
        if max_segments > 10:
            raise ConfigError(
                f"{owner}: max_segments may be at most 10 (Twilio's 1,600 characters)"
            )
        if not url.startswith(("https://", "http://")):
            raise ConfigError(f"{owner}: url must start with https:// (default {TWILIO_API})")
        self.to = numbers
        self.sender = {"From": from_} if from_ is not None else {
            "MessagingServiceSid": messaging_service_sid or ""
        }  # fmt: skip
        self.max_segments = max_segments
        self.timeout_s = timeout_s
        self.send_resolved = send_resolved
        self._url = f"{url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        token = base64.b64encode(f"{user}:{secret}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}
        self._parts = Parts("SMS")

    def text(self, notification: Notification) -> str:
        """The SMS body: title, first alert's summary, runbook link, cut to fit."""
        alerts = notification.firing or notification.alerts
        head = notification.title
        if alerts:
            text = summary(alerts[0])  # "rule: value" without a summary: the title has the rule
            head += f": {text.removeprefix(alerts[0].rule + ': ')}"
            if len(alerts) > 1:
                head += f" (+{len(alerts) - 1} more)"
        if notification.status == "acknowledged" and alerts:
            by = alerts[0].details.get("acknowledged_by")
            head += f" - acknowledged by {by}" if by else ""
        if notification.actions:  # what remediation did, before the link; cut first
            head += " | " + "; ".join(run.describe() for run in notification.actions)
        links = runbook_urls(alerts[:1])
        tail = f" {links[0]}" if links and is_link(links[0]) else ""
        return fit(" ".join(head.split()), tail, self.max_segments)

    def send(self, notification: Notification) -> None:
        body = self.text(notification)
        self._parts.send(
            notification,
            [(f"to ...{number[-4:]}", self._sender(number, body)) for number in self.to],
        )

    def _sender(self, number: str, body: str) -> Callable[[], object]:
        form = urllib.parse.urlencode({"To": number, **self.sender, "Body": body}).encode()
        return lambda: post(
            self._url,
            form,
            self._headers,
            self.timeout_s,
            content_type="application/x-www-form-urlencoded",
            explain=_twilio_message,
        )

    def __repr__(self) -> str:
        return f"TwilioSMSChannel(to={self.to!r}, credentials=<hidden>)"


def _twilio_message(answer: str) -> str:
    """Twilio's error JSON as ``Twilio error <code>: <message>``."""
    data = json.loads(answer)
    return f"Twilio error {data['code']}: {data['message']}"
