"""Local stand-ins for Microsoft Teams (Workflows webhook), Twilio's Messages API and
Opsgenie's Alert API v2: each checks a request against the service's documented fields
(required fields, types, length limits, auth header, content type) and answers as the service
does, including its error bodies. Install one on an :class:`HttpReceiver` with ``handlers``.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .receivers import Received

Answer = tuple[int, bytes, str]

# -- Microsoft Teams: a Workflows webhook taking an Adaptive Card -----------------------------

TEAMS_MAX_BYTES = 28 * 1024
#: Element and action types, with the Adaptive Card schema version that introduced each.
CARD_TYPES = {
    "TextBlock": "1.0", "Image": "1.0", "Container": "1.0", "ColumnSet": "1.0",
    "Column": "1.0", "FactSet": "1.0", "ImageSet": "1.0", "ActionSet": "1.2",
    "RichTextBlock": "1.2", "Table": "1.5",
    "Action.OpenUrl": "1.0", "Action.Submit": "1.0", "Action.ShowCard": "1.0",
    "Action.ToggleVisibility": "1.2", "Action.Execute": "1.4",
}  # fmt: skip
#: Properties each type may have, with the version that introduced them.
COMMON = {"id": "1.0", "separator": "1.0", "spacing": "1.0", "isVisible": "1.2", "height": "1.1"}
CARD_PROPERTIES = {
    "TextBlock": {"text": "1.0", "color": "1.0", "weight": "1.0", "size": "1.0", "wrap": "1.0",
                  "isSubtle": "1.0", "maxLines": "1.0", "horizontalAlignment": "1.0",
                  "fontType": "1.2", "style": "1.5"},
    "FactSet": {"facts": "1.0"},
    "Container": {"items": "1.0", "style": "1.0", "bleed": "1.2", "minHeight": "1.2",
                  "selectAction": "1.1", "verticalContentAlignment": "1.1"},
    "Action.OpenUrl": {"url": "1.0", "title": "1.0", "iconUrl": "1.1", "style": "1.2"},
}  # fmt: skip
TEXT_COLORS = {"Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention"}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def card_errors(card: Any, path: str = "content") -> list[str]:
    """Problems with an Adaptive Card as Teams takes it (adaptivecards.io schema explorer)."""
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        return [f"{path}.type must be 'AdaptiveCard'"]
    version = card.get("version")
    if not isinstance(version, str) or not re.fullmatch(r"1\.\d", version):
        return [f"{path}.version must be a schema version such as '1.2'"]
    if _version(version) > (1, 5):
        return [f"{path}.version {version}: Teams renders Adaptive Cards up to 1.5"]
    errors: list[str] = []
    for key in card:
        if key not in {"type", "version", "$schema", "body", "actions", "msteams", "fallbackText"}:
            errors.append(f"{path}.{key}: not an AdaptiveCard property")
    body = card.get("body", [])
    if not isinstance(body, list):
        errors.append(f"{path}.body must be a list")
        body = []
    for index, element in enumerate(body):
        errors.extend(_element_errors(element, version, f"{path}.body[{index}]"))
    for index, action in enumerate(card.get("actions", [])):
        errors.extend(_element_errors(action, version, f"{path}.actions[{index}]"))
    return errors


def _element_errors(element: Any, version: str, path: str) -> list[str]:
    if not isinstance(element, dict):
        return [f"{path} must be an object"]
    kind = element.get("type")
    if kind not in CARD_TYPES:
        return [f"{path}.type {kind!r} is not an Adaptive Card element"]
    errors = []
    if _version(CARD_TYPES[kind]) > _version(version):
        errors.append(f"{path}: {kind} needs version {CARD_TYPES[kind]}, card says {version}")
    allowed = {**COMMON, **CARD_PROPERTIES.get(kind, {}), "type": "1.0"}
    for key in element:
        if key not in allowed:
            errors.append(f"{path}.{key}: not a property of {kind}")
        elif _version(allowed[key]) > _version(version):
            errors.append(f"{path}.{key} needs version {allowed[key]}")
    if kind == "TextBlock":
        if not isinstance(element.get("text"), str) or not element["text"]:
            errors.append(f"{path}.text is required (a non-empty string)")
        if "color" in element and element["color"] not in TEXT_COLORS:
            errors.append(f"{path}.color {element['color']!r} is not a color")
    elif kind == "FactSet":
        facts = element.get("facts")
        if not isinstance(facts, list) or not facts:
            errors.append(f"{path}.facts is required (a non-empty list)")
        for fact in facts or []:
            if not (isinstance(fact.get("title"), str) and isinstance(fact.get("value"), str)):
                errors.append(f"{path}.facts: each fact needs string title and value")
    elif kind == "Container":
        for index, item in enumerate(element.get("items") or []):
            errors.extend(_element_errors(item, version, f"{path}.items[{index}]"))
        if not element.get("items"):
            errors.append(f"{path}.items is required")
    elif kind == "Action.OpenUrl":
        url = element.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            errors.append(f"{path}.url must be an absolute http(s) URL")
    return errors


def teams_errors(received: Received) -> list[str]:
    """Problems with a message posted to a Teams Workflows webhook."""
    if not received.headers.get("Content-Type", "").startswith("application/json"):
        return ["Content-Type must be application/json"]
    if len(received.raw) > TEAMS_MAX_BYTES:
        return [f"message is {len(received.raw)} bytes; Teams takes at most 28 KB"]
    body = received.body
    if not isinstance(body, dict) or body.get("type") != "message":
        return ["type must be 'message'"]
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or len(attachments) != 1:
        return ["attachments must hold exactly one card"]
    (attachment,) = attachments
    errors = []
    if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
        errors.append("attachments[0].contentType must be application/vnd.microsoft.card.adaptive")
    if "contentUrl" not in attachment or attachment["contentUrl"] is not None:
        errors.append("attachments[0].contentUrl must be null")
    return errors + card_errors(attachment.get("content"), "attachments[0].content")


def teams(received: Received) -> Answer:
    """Answer as a Workflows trigger: 202 and no body, or 400 with the reason as text."""
    errors = teams_errors(received)
    if errors:
        return 400, ("Bad Request: " + "; ".join(errors)).encode(), "text/plain"
    return 202, b"", "text/plain"


# -- Twilio Messages API -----------------------------------------------------------------------

E164 = re.compile(r"\+[1-9]\d{1,14}")
TWILIO_PATH = re.compile(r"/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages\.json")


@dataclass
class Twilio:
    """Twilio's Messages resource for one account: credentials it accepts, messages it took."""

    account_sid: str
    secrets: dict[str, str]  # username (account SID or API key SID) -> token or key secret
    messages: list[dict[str, str]] = field(default_factory=list)
    #: valid-looking numbers no carrier takes (Twilio's test number +15005550001 is one)
    invalid: set[str] = field(default_factory=lambda: {"+15005550001"})

    def __call__(self, received: Received) -> Answer:
        match = TWILIO_PATH.fullmatch(urlsplit(received.path).path)
        if match is None or match.group(1) != self.account_sid:
            return _twilio_error(404, 20404, "The requested resource was not found")
        if not self._authenticated(received.headers.get("Authorization", "")):
            return _twilio_error(401, 20003, "Authenticate")
        if received.headers.get("Content-Type") != "application/x-www-form-urlencoded":
            return _twilio_error(
                400, 20001, "Content-Type must be application/x-www-form-urlencoded"
            )
        form = parse_qs(received.raw.decode(), keep_blank_values=True, strict_parsing=True)
        if any(len(values) > 1 for values in form.values()):
            return _twilio_error(400, 21211, "One To (one message) per request")
        params = {key: values[0] for key, values in form.items()}
        to, body = params.get("To", ""), params.get("Body", "")
        if not to:
            return _twilio_error(400, 21604, "A 'To' phone number is required.")
        if not E164.fullmatch(to) or to in self.invalid:
            return _twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not params.get("From") and not params.get("MessagingServiceSid"):
            return _twilio_error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return _twilio_error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return _twilio_error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        unknown = set(params) - {"To", "From", "MessagingServiceSid", "Body", "StatusCallback"}
        if unknown:
            return _twilio_error(400, 21610, f"Unknown parameters: {sorted(unknown)}")
        self.messages.append(params)
        sid = "SM" + uuid.uuid4().hex
        answer = {"sid": sid, "account_sid": self.account_sid, "to": to, "body": body,
                  "status": "queued", "num_segments": "1", "error_code": None}  # fmt: skip
        return 201, json.dumps(answer).encode(), "application/json"

    def _authenticated(self, header: str) -> bool:
        kind, _, encoded = header.partition(" ")
        if kind != "Basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return False
        return self.secrets.get(user) == password


def _twilio_error(status: int, code: int, message: str) -> Answer:
    answer = {"code": code, "message": message, "status": status,
              "more_info": f"https://www.twilio.com/docs/errors/{code}"}  # fmt: skip
    return status, json.dumps(answer).encode(), "application/json"


# -- Opsgenie Alert API v2 ---------------------------------------------------------------------

OPSGENIE_LIMITS = {"message": 130, "alias": 512, "description": 15000, "entity": 512,
                   "source": 100, "user": 100, "note": 25000}  # fmt: skip
RESPONDER_TYPES = {"team", "user", "escalation", "schedule"}


@dataclass
class Opsgenie:
    """Opsgenie's Alert API for one integration key: alerts by alias, and what was asked."""

    api_key: str
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, received: Received) -> Answer:
        if received.headers.get("Authorization") != f"GenieKey {self.api_key}":
            return _opsgenie(401, {"message": "Could not authenticate"})
        if not received.headers.get("Content-Type", "").startswith("application/json"):
            return _opsgenie(415, {"message": "Content-Type must be application/json"})
        body = received.body if received.raw else {}
        if not isinstance(body, dict):
            return _opsgenie(400, {"message": "Request body is not a JSON object"})
        url = urlsplit(received.path)
        parts = url.path.strip("/").split("/")
        if len(parts) == 4 and parts[3] == "priority":
            return self._priority(received, parts[2], parse_qs(url.query), body)
        if received.method != "POST":
            return _opsgenie(405, {"message": f"{received.method} is not allowed here"})
        if parts == ["v2", "alerts"]:
            errors = create_errors(body)
            if errors:
                return _opsgenie(422, {"message": "Request body is not processable. Please "
                                       "check the errors.", "errors": errors})  # fmt: skip
            alias = body.get("alias") or body["message"]
            existing = self.alerts.get(alias)
            if existing is not None and existing["status"] != "closed":  # deduplicated:
                existing["count"] += 1  # counted, its fields kept
            else:
                self.alerts[alias] = {**body, "status": "open", "count": 1}
            self.requests.append(("create", alias, body))
            return _opsgenie(202, {"result": "Request will be processed"})
        if (
            len(parts) == 4
            and parts[:2] == ["v2", "alerts"]
            and parts[3] in ("close", "acknowledge")
        ):
            query = parse_qs(url.query)
            if query.get("identifierType") != ["alias"]:
                return _opsgenie(422, {"message": "identifierType must be alias here"})
            errors = {
                name: f"{name} is longer than {OPSGENIE_LIMITS[name]}"
                for name in ("user", "source", "note")
                if len(str(body.get(name, ""))) > OPSGENIE_LIMITS[name]
            }
            if errors:
                return _opsgenie(
                    422, {"message": "Request body is not processable.", "errors": errors}
                )
            alias = parts[2]
            self.requests.append((parts[3], alias, body))
            if alias in self.alerts:  # unknown aliases fail later, in Opsgenie's request log
                self.alerts[alias]["status"] = "closed" if parts[3] == "close" else "acked"
            return _opsgenie(202, {"result": "Request will be processed"})
        return _opsgenie(404, {"message": "Could not find the requested resource"})

    def _priority(
        self, received: Received, alias: str, query: dict[str, list[str]], body: dict[str, Any]
    ) -> Answer:
        """``PUT /v2/alerts/{id}/priority?identifierType=alias`` with ``{"priority": "P1"}``."""
        if received.method != "PUT":
            return _opsgenie(405, {"message": "update priority is a PUT"})
        if query.get("identifierType") != ["alias"]:
            return _opsgenie(422, {"message": "identifierType must be alias here"})
        if body.get("priority") not in {"P1", "P2", "P3", "P4", "P5"}:
            return _opsgenie(422, {"message": "Priority should be one of [P1, P2, P3, P4, P5]"})
        self.requests.append(("priority", alias, body))
        if alias in self.alerts:
            self.alerts[alias]["priority"] = body["priority"]
        return _opsgenie(202, {"result": "Request will be processed"})


def create_errors(body: dict[str, Any]) -> dict[str, str]:
    """Problems with a create-alert request, keyed by field (as Opsgenie's 422 lists them)."""
    errors: dict[str, str] = {}
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        errors["message"] = "Message can not be empty."
    for name, limit in OPSGENIE_LIMITS.items():
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            errors[name] = f"{name} must be a string of at most {limit} characters"
    priority = body.get("priority")
    if priority is not None and priority not in {"P1", "P2", "P3", "P4", "P5"}:
        errors["priority"] = "Priority should be one of [P1, P2, P3, P4, P5]"
    tags = body.get("tags", [])
    if (
        not isinstance(tags, list)
        or len(tags) > 20
        or any(not isinstance(t, str) or len(t) > 50 for t in tags)
    ):
        errors["tags"] = "at most 20 tags of at most 50 characters"
    details = body.get("details", {})
    if not isinstance(details, dict) or any(
        not isinstance(k, str) or not isinstance(v, str) for k, v in details.items()
    ):
        errors["details"] = "details maps strings to strings"
    elif sum(len(k) + len(v) for k, v in details.items()) > 8000:
        errors["details"] = "details may hold 8000 characters"
    for index, responder in enumerate(body.get("responders", [])):
        kind = responder.get("type") if isinstance(responder, dict) else None
        if kind not in RESPONDER_TYPES:
            errors[f"responders[{index}]"] = "type must be team, user, escalation or schedule"
        elif not ({"id", "name", "username"} & set(responder)):
            errors[f"responders[{index}]"] = "needs an id, a name or a username"
    known = {"message", "alias", "description", "responders", "visibleTo", "actions", "tags",
             "details", "entity", "source", "priority", "user", "note"}  # fmt: skip
    for name in set(body) - known:
        errors[name] = "not a field of the create-alert request"
    return errors


def _opsgenie(status: int, answer: dict[str, Any]) -> Answer:
    answer = {**answer, "took": 0.01, "requestId": str(uuid.uuid4())}
    return status, json.dumps(answer).encode(), "application/json"
