"""Local receivers for channel tests: an HTTP server that checks the documented payloads of
Slack incoming webhooks and PagerDuty Events API v2 (answering as they do), and an SMTP server.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PAGERDUTY_SEVERITIES = {"critical", "error", "warning", "info"}
SLACK_BLOCK_TYPES = {"header", "section", "context", "divider", "actions", "image"}


def slack_errors(body: Any) -> list[str]:
    """Problems with an incoming-webhook message (api.slack.com/messaging/webhooks)."""
    if not isinstance(body, dict):
        return ["invalid_payload"]
    errors = []
    text, blocks = body.get("text"), body.get("blocks")
    if not (isinstance(text, str) and text) and not blocks:
        errors.append("no_text")
    if blocks is not None:
        if not isinstance(blocks, list) or len(blocks) > 50:
            errors.append("invalid_blocks: at most 50")
        for block in blocks or []:
            kind = block.get("type")
            if kind not in SLACK_BLOCK_TYPES:
                errors.append(f"invalid_blocks: type {kind!r}")
            if kind == "header":
                inner = block.get("text", {})
                if inner.get("type") != "plain_text" or len(inner.get("text", "")) > 150:
                    errors.append("invalid_blocks: header needs plain_text <= 150")
            if kind == "section":
                inner = block.get("text", {})
                if inner.get("type") not in ("mrkdwn", "plain_text"):
                    errors.append("invalid_blocks: section text type")
                if not 0 < len(inner.get("text", "")) <= 3000:
                    errors.append("invalid_blocks: section text length")
    return errors


def pagerduty_errors(body: Any) -> list[str]:
    """Problems with an Events API v2 event (developer.pagerduty.com, events-api-v2)."""
    if not isinstance(body, dict):
        return ["Event object is invalid"]
    errors = []
    key = body.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = body.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        errors.append("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
    dedup = body.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or not 0 < len(dedup) <= 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append("'dedup_key' is required for acknowledge and resolve")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            return [*errors, "'payload' is missing or not an object"]
        summary = payload.get("summary")
        if not isinstance(summary, str) or not 0 < len(summary) <= 1024:
            errors.append("'payload.summary' is missing or longer than 1024 characters")
        if not isinstance(payload.get("source"), str) or not payload["source"]:
            errors.append("'payload.source' is missing")
        if payload.get("severity") not in PAGERDUTY_SEVERITIES:
            errors.append("'payload.severity' must be critical, error, warning or info")
        stamp = payload.get("timestamp")
        if stamp is not None:
            try:
                dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            except (ValueError, AttributeError):
                errors.append("'payload.timestamp' is not ISO 8601")
        if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
            errors.append("'payload.custom_details' must be an object")
    return errors


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes
    body: Any
    method: str = "POST"


@dataclass
class HttpReceiver:
    url: str
    received: list[Received] = field(default_factory=list)
    #: path -> list of status codes to answer first (then the path's normal answer)
    scripted: dict[str, list[int]] = field(default_factory=dict)
    delay_s: float = 0.0
    #: path prefix -> handler answering (status, body, content type); see service_receivers
    handlers: dict[str, Callable[[Received], tuple[int, bytes, str]]] = field(default_factory=dict)

    def bodies(self, path: str) -> list[Any]:
        return [r.body for r in self.received if r.path == path]


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    """Serve on 127.0.0.1: /slack and /pagerduty validate, /hook records, /fail/<n> answers n."""
    state: dict[str, HttpReceiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            receiver = state["r"]
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            receiver.received.append(
                Received(self.path, dict(self.headers), raw, body, self.command)
            )
            if receiver.delay_s:
                time.sleep(receiver.delay_s)
            script = receiver.scripted.get(self.path)
            handler = next(
                (h for prefix, h in receiver.handlers.items() if self.path.startswith(prefix)),
                None,
            )
            if script:
                self._answer(script.pop(0), b"scripted")
            elif handler is not None:
                self._answer(*handler(receiver.received[-1]))
            elif self.path == "/slack":
                errors = slack_errors(body)
                self._answer(400 if errors else 200, (errors[0] if errors else "ok").encode())
            elif self.path == "/pagerduty":
                errors = pagerduty_errors(body)
                if errors:
                    answer = {
                        "status": "invalid event",
                        "message": "Event object is invalid",
                        "errors": errors,
                    }
                    self._answer(400, json.dumps(answer).encode())
                else:
                    answer = {
                        "status": "success",
                        "message": "Event processed",
                        "dedup_key": body.get("dedup_key"),
                    }
                    self._answer(202, json.dumps(answer).encode())
            elif self.path.startswith("/fail/"):
                self._answer(int(self.path.rsplit("/", 1)[1]), b"nope")
            else:
                self._answer(200, b"ok")

        do_PUT = do_POST

        def _answer(self, status: int, data: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["r"] = HttpReceiver(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
