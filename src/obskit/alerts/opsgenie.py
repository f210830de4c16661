"""Opsgenie's Alert API v2: one Opsgenie alert per obskit alert, deduplicated by alias.

A firing alert creates (``POST /v2/alerts``) with ``alias`` ``obskit-<fingerprint>``, so
Opsgenie keeps one alert per alert instance and counts repeats; an acknowledgement
acknowledges and a resolution closes it (``POST /v2/alerts/<alias>/acknowledge`` or
``/close?identifierType=alias``); an escalation that raised the severity updates the priority
(``PUT /v2/alerts/<alias>/priority``), which a repeated create would not. Opsgenie answers
202 with a ``requestId`` (the request is processed later); an error answer's JSON ``message``
(and its per-field ``errors``) is what a failure says. ``Authorization: GenieKey <key>``
carries the API integration's key.

Fields stay within Opsgenie's limits: ``message`` 130 characters, ``alias`` 512,
``description`` 15,000, ``entity`` 512, ``source`` 100, at most 20 tags of 50 characters,
``details`` (string to string) 8,000 characters in all.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from obskit.alerts._http import Parts, post
from obskit.alerts._render import cut, facts, runbook_url, summary
from obskit.alerts.notify import Notification
from obskit.diagnostics import ConfigError, require_number
from obskit.signals import Alert, iso_time

__all__ = ["OpsgenieChannel"]

#: The API's base URL per region (accounts live in one).
OPSGENIE_URLS = {"us": "https://api.opsgenie.com", "eu": "https://api.eu.opsgenie.com"}
PRIORITIES = {"critical": "P1", "error": "P2", "warning": "P3", "info": "P5"}
RESPONDER_TYPES = ("team", "user", "escalation", "schedule")
_KEY = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DETAILS_CHARS = 8000


class OpsgenieChannel:
    """Creates, acknowledges and closes Opsgenie alerts (Alert API v2).

    ``region`` is ``"us"`` (api.opsgenie.com) or ``"eu"`` (api.eu.opsgenie.com); ``url``
    replaces both (a proxy, a test server). ``responders`` are who is notified:
    ``{"type": "team", "name": "ops"}`` or the short ``"team:ops"``, ``"user:ana@shop.com"``,
    ``"escalation:..."``, ``"schedule:..."``. ``priorities`` maps severities to P1-P5
    (critical P1, error P2, warning P3, info P5; anything else P3).

    >>> from obskit.signals import Alert
    >>> genie = OpsgenieChannel("eb243592-faa2-4ba2-a551-1afdf565c889", region="eu",
    ...                         responders=["team:payments"])
    >>> alert = Alert(timestamp=0, rule="disk_full", state="firing", severity="critical",
    ...               fingerprint="a4b9e84dd7fd0d4f", annotations={"summary": "db-1 is full"})
    >>> body = genie.create(alert)
    >>> body["message"], body["alias"], body["priority"]
    ('disk_full: db-1 is full', 'obskit-a4b9e84dd7fd0d4f', 'P1')
    >>> body["responders"]
    [{'type': 'team', 'name': 'payments'}]
    >>> genie
    OpsgenieChannel(url='https://api.eu.opsgenie.com', api_key=<hidden>)
    """

    def __init__(
        self,
        api_key: str,
        *,
        region: str = "us",
        url: str | None = None,
        responders: Sequence[str | Mapping[str, str]] = (),
        tags: Sequence[str] = (),
        priorities: Mapping[str, str] | None = None,
        source: str = "obskit",
        timeout_s: float = 5.0,
        send_resolved: bool = True,
    ) -> None:
        owner = "OpsgenieChannel"
        api_key = api_key.strip() if isinstance(api_key, str) else api_key
        if not isinstance(api_key, str) or not _KEY.fullmatch(api_key):
            raise ConfigError(
                f"{owner}: api_key must be the key of an Opsgenie API integration (Settings > "
                "Integrations > API), a UUID like 'eb243592-faa2-4ba2-a551-1afdf565c889'"
            )
        if url is None:
            if not isinstance(region, str) or region.lower() not in OPSGENIE_URLS:
                raise ConfigError(
                    f"{owner}: region must be 'us' (api.opsgenie.com) or 'eu' "
                    f"(api.eu.opsgenie.com), not {region!r}"
                )
            url = OPSGENIE_URLS[region.lower()]
        elif not url.startswith(("https://", "http://")):
            raise ConfigError(f"{owner}: url must start with https:// (or leave it to region=)")
        self.priorities = {**PRIORITIES, **(priorities or {})}
        bad = {k: v for k, v in self.priorities.items() if v not in ("P1", "P2", "P3", "P4", "P5")}
        if bad:
            raise ConfigError(f"{owner}: priorities must be P1 to P5, not {bad!r}")
        self.tags = list(tags)
        if len(self.tags) > 19 or any(not isinstance(t, str) or not 0 < len(t) <= 50 for t in tags):
            raise ConfigError(
                f"{owner}: at most 19 tags (the severity is one more) of 1-50 characters"
            )
        if not isinstance(source, str) or not 0 < len(source) <= 100:
            raise ConfigError(f"{owner}: source must be 1-100 characters")
        require_number(owner, "timeout_s", timeout_s)
        self.responders = [_responder(r) for r in responders]
        self.source = source
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.send_resolved = send_resolved
        self._api_key = api_key
        self._headers = {"Authorization": f"GenieKey {api_key}"}
        self._parts = Parts("Opsgenie request(s)")

    @property
    def api_key(self) -> str:
        return self._api_key

    def create(
        self, alert: Alert, context: Sequence[str] = (), release: str | None = None
    ) -> dict[str, Any]:
        """The create-alert body for a firing ``alert``. ``context``, the notification's
        context lines (action outcomes, release, error groups, traces), ends the description;
        ``release`` is also a detail."""
        text = summary(alert)
        message = text if text.startswith(alert.rule) else f"{alert.rule}: {text}"
        body: dict[str, Any] = {
            # Opsgenie refuses a blank message; a rule named only by whitespace gets a stand-in
            "message": cut(" ".join(message.split()) or "obskit alert", 130),
            "alias": alias(alert),
            "description": cut("\n\n".join([_description(alert), *context]).strip(), 15000),
            "tags": [*self.tags, cut(alert.severity, 50)] if alert.severity else self.tags,
            "details": _details(alert, release),
            "entity": cut(alert.service or alert.labels.get("service", ""), 512),
            "source": self.source,
            "priority": self.priorities.get(alert.severity, "P3"),
        }
        if self.responders:
            body["responders"] = self.responders
        return {k: v for k, v in body.items() if v not in ("", [])}

    def requests(self, notification: Notification) -> list[tuple[str, dict[str, Any]]]:
        """(path, body) of each request ``notification`` makes (``PUT <path>`` for a PUT)."""
        out = []
        context = notification.context_lines()
        outcomes = "; ".join(run.describe() for run in notification.actions)
        for alert in notification.alerts:
            path = f"/v2/alerts/{urllib.parse.quote(alias(alert), safe='')}"
            if notification.status == "acknowledged":
                by = str(alert.details.get("acknowledged_by") or "")
                note = str(alert.details.get("comment") or "")
                out.append((f"{path}/acknowledge?identifierType=alias", self._action(by, note)))
            elif alert.state == "firing":
                out.append(("/v2/alerts", self.create(alert, context, notification.release)))
                if notification.reason == "escalation":  # a repeated create keeps the priority
                    priority = {"priority": self.priorities.get(alert.severity, "P3")}
                    out.append((f"PUT {path}/priority?identifierType=alias", priority))
            else:
                by = str(alert.details.get("resolved_by") or "")
                note = f"resolved at {iso_time(alert.resolved_at or alert.timestamp)}"
                if by and alert.details.get("comment"):  # resolved by hand, with a why
                    note = str(alert.details["comment"])
                if outcomes:  # what on_resolve did
                    note += f"; {outcomes}"
                out.append((f"{path}/close?identifierType=alias", self._action(by, note)))
        return out

    def _action(self, user: str, note: str) -> dict[str, Any]:
        body = {"source": self.source, "user": cut(user, 100), "note": cut(note, 25000)}
        return {k: v for k, v in body.items() if v}

    def send(self, notification: Notification) -> None:
        self._parts.send(
            notification,
            [
                (path.split("?")[0], self._sender(path, body))
                for path, body in self.requests(notification)
            ],
        )

    def _sender(self, path: str, body: dict[str, Any]) -> Callable[[], object]:
        data = json.dumps(body, default=str).encode()
        method, _, path = path.rpartition(" ")
        return lambda: post(
            self.url + path,
            data,
            self._headers,
            self.timeout_s,
            explain=_opsgenie_message,
            method=method or "POST",
        )

    def __repr__(self) -> str:
        return f"OpsgenieChannel(url={self.url!r}, api_key=<hidden>)"


def alias(alert: Alert) -> str:
    """The Opsgenie alias of an alert instance: one Opsgenie alert per obskit alert."""
    return f"obskit-{alert.fingerprint}" if alert.fingerprint else cut(f"obskit-{alert.rule}", 512)


def _description(alert: Alert) -> str:
    lines = [summary(alert)]
    description = alert.annotations.get("description")
    if description and description != lines[0]:
        lines.append(str(description))
    lines.append("")
    lines.extend(f"{title}: {text}" for title, text in facts(alert))
    return "\n".join(lines).strip()


def _details(alert: Alert, release: str | None = None) -> dict[str, str]:
    """Release, labels, value and runbook as string pairs, cut to Opsgenie's 8,000 characters."""
    pairs = {"release": release} if release else {}
    pairs.update((str(k), str(v)) for k, v in alert.labels.items())
    if alert.value is not None:
        pairs["value"] = f"{alert.value:.6g}"
    if runbook_url(alert):
        pairs["runbook_url"] = runbook_url(alert)
    pairs["fingerprint"] = alert.fingerprint
    out: dict[str, str] = {}
    left = _DETAILS_CHARS
    for key, value in pairs.items():
        key, value = cut(key, 100), cut(value, 1000)
        if len(key) + len(value) > left:
            break
        out[key] = value
        left -= len(key) + len(value)
    return out


def _responder(given: str | Mapping[str, str]) -> dict[str, str]:
    if isinstance(given, str):
        kind, _, name = given.partition(":")
        field = "username" if kind == "user" else "name"
        responder = {"type": kind, field: name}
    else:
        responder = {str(k): str(v) for k, v in given.items()}
    named = any(responder.get(k) for k in ("id", "name", "username"))
    if responder.get("type") not in RESPONDER_TYPES or not named:
        raise ConfigError(
            f"OpsgenieChannel: responder {given!r} must be 'team:<name>', 'user:<email>', "
            "'escalation:<name>', 'schedule:<name>' or a dict with type and id/name/username"
        )
    return responder


def _opsgenie_message(answer: str) -> str:
    """Opsgenie's error JSON as its ``message`` and per-field ``errors``."""
    data = json.loads(answer)
    errors = data.get("errors") or {}
    detail = "; ".join(f"{k}: {v}" for k, v in errors.items()) if isinstance(errors, dict) else ""
    return str(data["message"]) + (f" ({detail})" if detail else "")
