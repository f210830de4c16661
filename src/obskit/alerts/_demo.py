"""The alerting part of ``obskit demo``: an error-rate rule, a local webhook, a timeline.

The rule reads the built-in ``obskit.request.duration`` series (fed by ``obskit.request``;
failed requests carry ``error.type``), so it needs no code in the demo's handlers. It fires
while the simulated search service fails more than once every two seconds, and resolves once
traffic stops and its two-second window empties; rather than sleep through that, the demo
evaluates the engine at the later times directly (the engine takes ``now``). Every
notification goes to a webhook served on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

import obskit.alerts
from obskit.alerts import AlertEngine, WebhookChannel

__all__ = ["DemoAlerting"]

WINDOW_S = 2.0


class DemoAlerting:
    """Starts the engine and the webhook receiver; ``finish`` resolves, ``report`` prints."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.start = time.time()
        self.engine: AlertEngine = obskit.alerts.configure(
            evaluation_interval_s=0.25,
            group_wait_s=0.0,
            group_interval_s=0.5,
            repeat_interval_s=60.0,
        )
        self.engine.add_channel("webhook", WebhookChannel(self.url, hmac_secret="demo-secret"))
        self.engine.add_rule(
            name="high_error_rate",
            metric="obskit.request.duration",
            matchers=['error.type=~".+"'],  # failed requests carry error.type
            aggregation="count",  # failed requests in the window
            window_s=WINDOW_S,
            resolution_s=0.25,
            op=">",
            threshold=WINDOW_S * 0.5,  # more than one every two seconds
            for_s=0.5,
            severity="critical",
            channels=["webhook"],
            annotations={"summary": "{{ labels.name }} failed {{ value }} times in 2s"},
        )

    def finish(self) -> None:
        """Traffic has stopped: evaluate past the window, so the alert resolves and is sent."""
        self.engine.stop()
        later = time.time() + WINDOW_S
        self.engine.evaluate(later)
        self.engine.evaluate(later + 0.5)  # the group's next flush carries the resolution
        self.engine.flush(5.0)

    def report(self, out: TextIO) -> None:
        out.write(
            "\nAlerts (rule high_error_rate: more than 1 failed request in 2s, for 0.5s; "
            'count of obskit.request.duration{error.type=~".+"}):\n'
        )
        changes = [
            e for e in self.engine.history() if e["event"] in ("pending", "firing", "resolved")
        ]
        if not changes:
            out.write("  none fired (the error rate stayed under the threshold)\n")
        for event in changes:
            value = f"{event['value']:.0f} failed" if event["value"] is not None else "no data"
            out.write(f"  +{event['at'] - self.start:5.2f}s  {event['event']:<9} {value}\n")
        out.write(f"Webhook {self.url} received {len(self.received)} notification(s):\n")
        for body in self.received:
            summary = body.get("commonAnnotations", {}).get("summary", "")
            out.write(f"  {body['obskit']['title']}  {summary}\n")
        obskit.alerts.reset()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        received = self.received

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Receiver
