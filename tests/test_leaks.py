"""Leak nothing: a generated secret, planted in every kind of field, leaves in no exported byte.

Each example goes through the real path (log calls, spans, captured errors, a health check,
an alert) into the pipeline's scrubber, then through every exported form: JSON lines, the
SQLite file, OTLP request bytes, a webhook body, a health HTTP body, an alert channel payload.
Ordinary values (ids, paths, prices, hostnames) must come out unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import string
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

import obskit
from obskit import _runtime
from obskit.alerts.notify import Notification, scrubbed
from obskit.exporters import InMemoryExporter, OTLPExporter, SQLiteExporter, WebhookExporter
from obskit.exporters._render import json_line
from obskit.health import HealthRegistry
from obskit.health.http import render
from obskit.signals import Alert

ORDINARY = {
    "order_id": "order-12345",
    "path": "/var/app/data.csv",
    "price": "19.99",
    "host": "db-1.internal",
    "url": "https://shop.example.com/items?page=2&sort=asc",
    "monkey": "banana",
}

secrets = st.text(string.ascii_letters + string.digits, min_size=12, max_size=24).map(
    lambda text: "Zq" + text
)


def plant(secret: str, tmp: Path) -> list[bytes]:
    """Log, trace, capture, check and alert with ``secret`` everywhere; the exported bytes."""
    memory = InMemoryExporter()
    obskit.init(exporters=[memory], level="debug", install_hooks=False, include_locals=True)
    log = obskit.get_logger(f"app.reset?token={secret}")
    log.info(
        f"login for ann password={secret} via redis://:{secret}@cache:6379",
        next=f"https://app/cb?{quote(f'token={secret}')}",
        callback=f"https://api.example.com/hook?key={secret}&sig={secret}&pw={secret}",
        headers=[("X-Api-Key", secret), (b"authorization", f"Bearer {secret}".encode())],
        passphrase=secret,
        credentials={"user": "ann", "pass": secret},
        jwt=secret,
        **{"api.key": secret, "Ocp-Apim-Subscription-Key": secret, "x-functions-key": secret},
        private=secret,
        github=f"ghp_{secret}{'a' * 20}",
        stripe=f"sk_live_{secret}",
        **ORDINARY,
    )
    with obskit.request(f"GET /reset?token={secret}"):
        pass
    pw = secret  # a local with a short name  # noqa: F841
    try:
        raise ConnectionError(f"cannot reach redis://:{secret}@cache:6379/0")
    except ConnectionError:
        obskit.capture_exception()
    assert obskit.flush(timeout_s=10)
    signals = list(memory.records)
    scrubber = _runtime.current().pipeline.scrubber

    registry = HealthRegistry(name="leaks")

    def cache() -> None:
        raise ConnectionError(f"redis://:{secret}@cache:6379 refused")

    registry.register("cache", cache)
    registry.register("db", lambda: (True, {"dsn": [("password", secret)], **ORDINARY}))
    report = registry.run()
    health_signal = report.to_signal()
    health_signal.scrub(scrubber)
    signals.append(health_signal)
    health_body = render(report, True)[2]
    registry.close()

    alert = Alert(
        timestamp=1.0,
        rule="leak",
        state="firing",
        severity="error",
        labels={"token": secret, "host": ORDINARY["host"]},
        annotations={"summary": f"token {secret} seen on {ORDINARY['host']}"},
    )
    payload = scrubbed(Notification("hook", "first", [alert], group_labels={"token": secret}))
    channel_body = json.dumps(payload.to_dict()).encode()
    exported_alert = dataclasses.replace(alert)
    exported_alert.scrub(scrubber)
    signals.append(exported_alert)

    jsonl = "\n".join(json_line(s) for s in signals).encode()
    db = tmp / "leaks.db"
    sqlite = SQLiteExporter(db)
    sqlite.export(signals)
    sqlite.shutdown()
    stored = b"".join(p.read_bytes() for p in tmp.glob("leaks.db*"))
    otlp = OTLPExporter("http://127.0.0.1:9", export_spans=True)
    otlp_bytes = b"".join(
        request.SerializeToString()
        for name, items in otlp._split(signals).items()
        if items
        for request, _ in otlp._requests(name, items)
    )
    webhook = WebhookExporter("http://127.0.0.1:9/hook")._body(signals)
    obskit.shutdown()
    return [jsonl, stored, otlp_bytes, webhook, health_body, channel_body]


@given(secret=secrets)
def test_no_exported_byte_holds_a_planted_secret(secret: str, tmp_path_factory: object) -> None:
    tmp = tmp_path_factory.mktemp("leaks")  # type: ignore[attr-defined]
    forms = plant(secret, tmp)
    names = ["json lines", "sqlite", "otlp", "webhook", "health body", "alert channel"]
    for name, data in zip(names, forms, strict=True):
        assert secret.encode() not in data, f"{name} leaked the secret"
    lines = [json.loads(line) for line in forms[0].decode().splitlines()]
    (logged,) = [line for line in lines if line.get("signal") == "log"]
    for key, value in ORDINARY.items():
        assert logged[key] == value  # ordinary values pass unchanged


def test_endpoint_credentials_become_an_authorization_header() -> None:
    exporter = OTLPExporter("http://ann:s3cret-pw@127.0.0.1:4318")
    destination = exporter.destinations["logs"]
    assert destination.address == "http://127.0.0.1:4318/v1/logs"
    assert destination.headers["authorization"] == "Basic YW5uOnMzY3JldC1wdw=="
    assert "s3cret" not in repr(exporter)
    webhook = WebhookExporter("https://ann:s3cret-pw@hooks.example.com/x")
    assert webhook.url == "https://hooks.example.com/x"
    assert webhook.headers["Authorization"] == "Basic YW5uOnMzY3JldC1wdw=="
    assert "s3cret" not in repr(webhook)


@pytest.mark.parametrize(
    "ordinary",
    [
        "GET /api/orders/12345?page=2&sort=asc",
        "paid 19.99 EUR for order-12345",
        "connected to db-1.internal:5432 as app",
        "/home/ann/projects/keyboard/main.py",
        "monkey=banana key_count=3",
    ],
)
def test_ordinary_text_is_left_alone(ordinary: str) -> None:
    from obskit.scrubbing import Scrubber

    assert Scrubber().clean_text(ordinary) == ordinary
