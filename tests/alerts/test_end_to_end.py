"""End to end with the real servers: an obskit app exposes /metrics, Prometheus scrapes it and
evaluates the exported rules, Alertmanager routes with the exported configuration to a local
webhook receiver; obskit's own engine evaluates the same rule in-process. A driven error ratio
fires in both at the same evaluation (within one interval), reaches the receiver, then resolves.
"""

from __future__ import annotations

import datetime
import json
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

import obskit.metrics
from obskit.alerts import AlertEngine, WebhookChannel

from .promstack import alertmanager, get_json, need, prometheus
from .receivers import HttpReceiver, http_receiver

INTERVAL_S = 2.0  # Prometheus' and obskit's evaluation interval
SCRAPE_S = 1.0


@pytest.fixture
def app_metrics() -> Iterator[tuple[Any, Any, str]]:
    """Two declared counters of this test and the /metrics endpoint serving them."""
    suffix = uuid.uuid4().hex[:8]
    requests = obskit.metrics.counter(f"e2e{suffix}.requests", description="requests")
    errors = obskit.metrics.counter(f"e2e{suffix}.errors", description="failed requests")
    server = obskit.metrics.serve(port=0)
    try:
        yield requests, errors, server.url
    finally:
        server.close()


def firing_in_prometheus(url: str, name: str) -> bool:
    alerts = get_json(url + "/api/v1/alerts")["data"]["alerts"]
    return any(a["labels"]["alertname"] == name and a["state"] == "firing" for a in alerts)


def hook_statuses(receiver: HttpReceiver) -> list[str]:
    """Statuses of what Alertmanager sent (obskit's own webhook bodies carry ``obskit``)."""
    return [body["status"] for body in from_alertmanager(receiver)]


def from_alertmanager(receiver: HttpReceiver) -> list[dict[str, Any]]:
    return [r.body for r in receiver.received if r.path == "/hook" and "obskit" not in r.body]


def test_an_error_ratio_fires_in_prometheus_with_obskit_then_reaches_alertmanager_and_resolves(
    app_metrics: tuple[Any, Any, str], make_engine: Callable[..., AlertEngine]
) -> None:
    need("prometheus")
    need("alertmanager")
    requests, errors, metrics_url = app_metrics
    engine = make_engine(
        clock=time.time, group_wait_s=1, group_interval_s=1, evaluation_interval_s=INTERVAL_S
    )
    obskit.metrics.add_sink(engine.store)
    try:
        with http_receiver() as receiver:
            engine.add_channel("hook", WebhookChannel(receiver.url + "/hook"))
            engine.add_rule(
                name="high_error_ratio",
                metric=errors.name,
                denominator=requests.name,
                aggregation="rate",
                window_s="10s",
                threshold=0.2,
                aggregate_by=["route"],
                channels=["hook"],
            )
            engine.stop()  # the test evaluates at the interval itself, and says when
            rules = engine.export_prometheus_rules(strict=True)
            routing = engine.export_alertmanager_config(strict=False)
            with alertmanager(routing.text) as am_url:
                target = urllib.parse.urlsplit(metrics_url).netloc
                config = {
                    "global": {
                        "scrape_interval": f"{SCRAPE_S:g}s",
                        "evaluation_interval": f"{INTERVAL_S:g}s",
                    },
                    "rule_files": ["rules.yml"],
                    "alerting": {
                        "alertmanagers": [
                            {
                                "static_configs": [
                                    {"targets": [urllib.parse.urlsplit(am_url).netloc]}
                                ]
                            }
                        ]
                    },
                    "scrape_configs": [
                        {"job_name": "shop", "static_configs": [{"targets": [target]}]}
                    ],
                }
                with prometheus(json.dumps(config), {"rules.yml": rules.text}) as prom_url:
                    timeline = drive(engine, requests, errors, prom_url, receiver)
    finally:
        obskit.metrics.remove_sink(engine.store)
    # When each side decided, by its own evaluation timestamps (Prometheus' startsAt and endsAt
    # as Alertmanager passed them on), not when this loop happened to look: a slow machine
    # delays the looking, not the decisions.
    fired_obskit, fired_prom = timeline["obskit firing"], timeline["prometheus fired at"]
    assert abs(fired_prom - fired_obskit) <= INTERVAL_S + SCRAPE_S, timeline
    resolved_obskit, resolved_prom = timeline["obskit resolved"], timeline["prometheus resolved at"]
    assert abs(resolved_prom - resolved_obskit) <= INTERVAL_S + SCRAPE_S, timeline
    assert timeline["webhook firing"] >= timeline["prometheus firing"]
    assert timeline["webhook resolved"] >= timeline["prometheus resolved"]


def drive(
    engine: AlertEngine, requests: Any, errors: Any, prom_url: str, receiver: HttpReceiver
) -> dict[str, float]:
    """Traffic for 40 s (errors from 10 s to 25 s); when each side saw what, from the start."""
    start = time.time()
    seen: dict[str, float] = {}
    next_evaluation = start
    while time.time() - start < 60:
        now = time.time()
        elapsed = now - start
        requests.add(10, route="/cart")
        if 10 <= elapsed < 25:
            errors.add(5, route="/cart")
        elif elapsed < 10:
            errors.add(0, route="/cart")
        if now >= next_evaluation:
            next_evaluation += INTERVAL_S
            for alert in engine.evaluate(now):
                seen.setdefault(f"obskit {alert.state}", elapsed)
            engine.flush(1)
        firing = firing_in_prometheus(prom_url, "high_error_ratio")
        if firing:
            seen.setdefault("prometheus firing", elapsed)
        elif "prometheus firing" in seen:
            seen.setdefault("prometheus resolved", elapsed)
        statuses = hook_statuses(receiver)
        if "firing" in statuses:
            seen.setdefault("webhook firing", elapsed)
        if statuses[-1:] == ["resolved"]:
            seen.setdefault("webhook resolved", elapsed)
        if {"webhook resolved", "obskit resolved", "prometheus resolved"} <= set(seen):
            break
        time.sleep(0.2)
    received = from_alertmanager(receiver)
    assert {"obskit firing", "prometheus firing", "webhook firing"} <= set(seen), (seen, received)
    assert all(a["labels"]["route"] == "/cart" for body in received for a in body["alerts"])
    for body in received:
        for alert in body["alerts"]:
            if alert["status"] == "firing":
                seen.setdefault("prometheus fired at", rfc3339(alert["startsAt"]) - start)
            else:
                seen.setdefault("prometheus resolved at", rfc3339(alert["endsAt"]) - start)
    return seen


def rfc3339(text: str) -> float:
    """Seconds since the epoch of Prometheus' timestamps (nanosecond digits cut to micro)."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    stamp = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc)
    return stamp.timestamp() + float(f"0.{fraction or 0}")


def test_prometheus_loads_the_exported_rules_unchanged(
    make_engine: Callable[..., AlertEngine],
) -> None:
    need("prometheus")
    engine = make_engine()
    engine.add_slo(name="checkout", good="ok", total="all", objective=0.999)
    text = engine.export_prometheus_rules(kinds={"ok": "counter", "all": "counter"}).text
    config = {"global": {"evaluation_interval": "1s"}, "rule_files": ["rules.yml"]}
    with prometheus(json.dumps(config), {"rules.yml": text}) as url:
        groups = get_json(url + "/api/v1/rules")["data"]["groups"]
    names = [r["name"] for g in groups for r in g["rules"]]
    assert names == [
        r.get("record") or r.get("alert") for r in yaml.safe_load(text)["groups"][0]["rules"]
    ]
