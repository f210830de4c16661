"""SentryExporter: error events to Sentry, self-hosted Sentry or GlitchTip, grouped as obskit does.

Each :class:`~obskit.signals.ErrorEvent` is sent as one envelope (Sentry allows one event per
envelope) to the project's envelope endpoint, ``<scheme>://<host>/api/<project>/envelope/``,
authenticated with the DSN's public key in ``X-Sentry-Auth``. obskit's fingerprint is sent as
the event's ``fingerprint``, so the server groups exactly as obskit does; the event also carries
its exception chain (oldest first, as Sentry orders it, with exception-group ids kept), the
breadcrumbs, tags, user, release, environment, context (``extra``) and the trace context.

Rate limits are honoured as Sentry's SDKs do: an ``X-Sentry-Rate-Limits`` header (on any
answer) or a 429 with ``Retry-After`` stops sending the limited categories until the time is
up, and events of a limited category are dropped (counted, one warning), not queued, so a
spike does not turn into a flood once the limit lifts. 5xx answers and unreachable servers are
retried by the processor (Sentry drops an event id it has already seen, so a retried batch does
not double anything). Other 4xx answers drop that event.

The envelope is three lines of JSON, written here with the standard library: sentry-sdk would
bring its global client and integrations along for a format this small (its own parser reads
what this writes, in the tests).
"""

from __future__ import annotations

import gzip as gzip_module
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlsplit

from obskit import diagnostics
from obskit.diagnostics import ConfigError
from obskit.exporters._http import parse_retry_after, post
from obskit.exporters._render import _encode
from obskit.exporting import ExportResult
from obskit.signals import ErrorEvent, Signal, iso_time

__all__ = ["Dsn", "SentryExporter", "parse_rate_limits", "sentry_event"]

try:
    _VERSION = version("obskit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    _VERSION = "0.0.0"
_CLIENT = f"obskit/{_VERSION}"
_SDK = {"name": "obskit", "version": _VERSION}
#: Sentry's levels; obskit's "critical" is Sentry's "fatal".
_LEVELS = {"critical": "fatal"}
_DEFAULT_RETRY_AFTER_S = 60.0


@dataclass(frozen=True, slots=True)
class Dsn:
    """A parsed Sentry DSN: ``<scheme>://<public_key>@<host>[:port]/[path/]<project_id>``.

    >>> dsn = Dsn.parse("https://abc123@o1.ingest.sentry.io/42")
    >>> dsn.envelope_url, dsn.public_key
    ('https://o1.ingest.sentry.io/api/42/envelope/', 'abc123')
    """

    scheme: str
    public_key: str
    secret_key: str | None
    host: str
    path: str
    project_id: str

    @classmethod
    def parse(cls, dsn: str) -> Dsn:
        """Parse ``dsn``; :class:`~obskit.ConfigError` saying what is wrong if it is not one."""
        parts = urlsplit(dsn.strip())
        path, _, project = parts.path.rstrip("/").rpartition("/")
        problems = []
        if parts.scheme not in ("http", "https"):
            problems.append("it must start with https:// or http://")
        if not parts.username:
            problems.append("it has no public key before the @")
        if not parts.hostname:
            problems.append("it has no host")
        if not project.isdigit():
            problems.append("it must end with the numeric project id")
        if problems:
            raise ConfigError(
                f"SentryExporter: {dsn!r} is not a Sentry DSN ({'; '.join(problems)}); copy it "
                "from the project's Settings > Client Keys (DSN): "
                "https://<key>@<host>/<project id>"
            )
        port = f":{parts.port}" if parts.port else ""
        assert parts.username is not None and parts.hostname is not None
        return cls(
            parts.scheme, parts.username, parts.password, parts.hostname + port, path, project
        )

    @property
    def envelope_url(self) -> str:
        return f"{self.scheme}://{self.host}{self.path}/api/{self.project_id}/envelope/"

    @property
    def auth_header(self) -> str:
        fields = [
            ("sentry_version", "7"),
            ("sentry_client", _CLIENT),
            ("sentry_key", self.public_key),
        ]
        if self.secret_key:
            fields.append(("sentry_secret", self.secret_key))
        return "Sentry " + ", ".join(f"{name}={value}" for name, value in fields)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.public_key}@{self.host}{self.path}/{self.project_id}"


class SentryExporter:
    """Sends error events to the Sentry project of ``dsn``; other signal kinds are ignored.

    ``gzip`` compresses envelopes; ``certificate`` is a CA bundle to trust for ``https://``;
    ``clock`` gives the time rate limits are measured against (injected by tests).
    """

    def __init__(
        self,
        dsn: str,
        *,
        timeout_s: float = 10.0,
        gzip: bool = True,
        certificate: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if timeout_s <= 0:
            raise ConfigError("SentryExporter: timeout_s must be positive")
        self.dsn = Dsn.parse(dsn)
        self.timeout_s = timeout_s
        self.gzip = gzip
        self.clock = clock
        self.headers = {
            "Content-Type": "application/x-sentry-envelope",
            "X-Sentry-Auth": self.dsn.auth_header,
            "User-Agent": _CLIENT,
        }
        if gzip:
            self.headers["Content-Encoding"] = "gzip"
        handlers: list[Any] = []
        if self.dsn.scheme == "https":
            context = ssl.create_default_context(cafile=certificate)
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)
        #: category ("" for every category) -> the clock time its rate limit ends
        self._limits: dict[str, float] = {}
        self._lock = threading.Lock()
        #: Events dropped because Sentry asked for fewer (rate limits).
        self.rate_limited = 0

    def __repr__(self) -> str:
        return f"SentryExporter({self.dsn.host}/{self.dsn.project_id})"

    # -- the Exporter protocol -------------------------------------------------------------

    def export(self, batch: Sequence[Signal]) -> ExportResult:
        events = [signal for signal in batch if isinstance(signal, ErrorEvent)]
        result = ExportResult.SUCCESS
        for index, event in enumerate(events):
            if self.limited("error"):
                self._drop_rate_limited(len(events) - index)
                return result
            answer = post(
                self._opener,
                self.dsn.envelope_url,
                self._envelope(event),
                self.headers,
                self.timeout_s,
            )
            self._note_limits(answer.status, answer.headers)
            where = repr(self)
            if answer.status is None:
                diagnostics.report("sentry.unreachable", f"{where}: {answer.reason}; retrying")
                return ExportResult.RETRYABLE
            if answer.status == 429:
                self._drop_rate_limited(len(events) - index)
                return result
            if answer.status >= 500:
                diagnostics.report(
                    f"sentry.http_{answer.status}",
                    f"{where}: HTTP {answer.status} {answer.reason}; retrying",
                )
                return ExportResult.RETRYABLE
            if answer.status >= 300:
                diagnostics.report(
                    f"sentry.http_{answer.status}",
                    f"{where}: HTTP {answer.status} {answer.reason}; event dropped",
                )
                result = ExportResult.FAILURE
        return result

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        return True

    def shutdown(self, timeout_s: float = 5.0) -> None:
        return None

    # -- rate limits -----------------------------------------------------------------------

    def limited(self, category: str) -> bool:
        """Whether Sentry asked not to send ``category`` ("error", ...) for now."""
        now = self.clock()
        limits = self._limits
        return limits.get(category, 0.0) > now or limits.get("", 0.0) > now

    def _note_limits(self, status: int | None, headers: Mapping[str, str]) -> None:
        now = self.clock()
        header = headers.get("x-sentry-rate-limits")
        if header:
            found = parse_rate_limits(header)
        elif status == 429:
            after = parse_retry_after(headers.get("retry-after"), now=now)
            found = {"": _DEFAULT_RETRY_AFTER_S if after is None else after}
        else:
            return
        with self._lock:
            for category, seconds in found.items():
                self._limits[category] = max(self._limits.get(category, 0.0), now + seconds)

    def _drop_rate_limited(self, count: int) -> None:
        self.rate_limited += count
        diagnostics.report(
            "sentry.rate_limited",
            f"{self!r}: Sentry's rate limit is in force; dropped {count} event(s)",
        )

    # -- the envelope ----------------------------------------------------------------------

    def _envelope(self, event: ErrorEvent) -> bytes:
        payload = _encode(sentry_event(event)).encode("utf-8")
        header = {
            "event_id": event.event_id,
            "sent_at": iso_time(time.time()),
            "dsn": str(self.dsn),
            "sdk": _SDK,
        }
        item = {"type": "event", "length": len(payload), "content_type": "application/json"}
        body = b"\n".join([_encode(header).encode(), _encode(item).encode(), payload]) + b"\n"
        return gzip_module.compress(body, compresslevel=5) if self.gzip else body


def parse_rate_limits(header: str) -> dict[str, float]:
    """``X-Sentry-Rate-Limits`` as ``{category: seconds}`` ("" stands for every category).

    >>> parse_rate_limits("60:error;transaction:key, 2700::organization")
    {'error': 60.0, 'transaction': 60.0, '': 2700.0}
    """
    limits: dict[str, float] = {}
    for limit in header.split(","):
        seconds_text, _, rest = limit.strip().partition(":")
        try:
            seconds = max(0.0, float(seconds_text))
        except ValueError:
            continue
        categories = rest.partition(":")[0]
        for category in categories.split(";") if categories else [""]:
            limits[category.strip()] = max(limits.get(category.strip(), 0.0), seconds)
    return limits


def sentry_event(event: ErrorEvent) -> dict[str, Any]:
    """The Sentry event payload for an obskit error event (the envelope's ``event`` item)."""
    payload: dict[str, Any] = {
        "event_id": event.event_id,
        "timestamp": event.timestamp,
        "platform": "python",
        "level": _LEVELS.get(event.level, event.level),
        "fingerprint": [event.fingerprint],
        "culprit": event.culprit,
        "sdk": _SDK,
        "tags": {**({"service": event.service} if event.service else {}), **event.tags},
        "extra": dict(event.context),
        "breadcrumbs": {"values": [_breadcrumb(crumb) for crumb in event.breadcrumbs]},
    }
    if event.exceptions:
        # Sentry lists a chain oldest first; obskit's is outermost first.
        payload["exception"] = {"values": [_exception(e) for e in reversed(event.exceptions)]}
    else:
        payload["logentry"] = {"formatted": event.message or event.title}
    if event.release:
        payload["release"] = event.release
    if event.environment:
        payload["environment"] = event.environment
    if event.user:
        payload["user"] = dict(event.user)
    if event.trace_id:
        trace = {"trace_id": event.trace_id, "span_id": event.span_id}
        payload["contexts"] = {"trace": {k: v for k, v in trace.items() if v}}
    return payload


_FRAME_KEYS = (
    "filename",
    "abs_path",
    "function",
    "module",
    "lineno",
    "context_line",
    "in_app",
    "vars",
)


def _exception(entry: Mapping[str, Any]) -> dict[str, Any]:
    frames = [
        {key: frame[key] for key in _FRAME_KEYS if frame.get(key) is not None}
        for frame in entry.get("frames") or ()
    ]
    out: dict[str, Any] = {
        "type": entry.get("type"),
        "value": entry.get("value"),
        "module": entry.get("module"),
        "stacktrace": {"frames": frames},
    }
    mechanism = entry.get("mechanism")
    if mechanism:
        out["mechanism"] = dict(mechanism)
    return out


def _breadcrumb(crumb: Mapping[str, Any]) -> dict[str, Any]:
    out = {
        key: crumb[key]
        for key in ("timestamp", "category", "message", "level", "data")
        if crumb.get(key) is not None
    }
    out["type"] = "default"
    return out
