"""A store with one of everything, written by the real SQLiteExporter at a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.request import Request, urlopen

import pytest

from obskit.dashboard import Dashboard
from obskit.exporters import SQLiteExporter
from obskit.signals import (
    Alert,
    Anomaly,
    ErrorEvent,
    HealthRecord,
    LogRecord,
    MetricPoint,
    SpanRecord,
)

#: "Now" for every page rendered in these tests (2026-01-15 12:00:00 UTC).
NOW = 1_768_478_400.0
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
GROUP = "f00dfacef00dfacef00dfacef00dface"
REQUEST = "req-0001"


def _frames() -> list[dict[str, object]]:
    return [
        {
            "module": "shop.views",
            "function": "checkout",
            "filename": "shop/views.py",
            "lineno": 41,
            "context_line": "total = pay(cart)",
            "in_app": True,
        },
        {
            "module": "payments.client",
            "function": "post",
            "filename": "payments/client.py",
            "lineno": 88,
            "context_line": "raise Declined(reason)",
            "in_app": False,
        },
        {
            "module": "shop.pay",
            "function": "pay",
            "filename": "shop/pay.py",
            "lineno": 12,
            "context_line": "return client.post(amount=cart.total)",
            "in_app": True,
        },
    ]


BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]


def request_histograms(now: float) -> list[object]:
    """http.server.request.duration per minute, as the HTTP middleware records it (delta)."""
    out: list[object] = []
    for minute in range(10):
        ts = now - 600 + minute * 60 + 30
        for method, route, status, counts in (
            ("GET", "/search", 200, [3, 10, 5, 1, 1, 0, 0, 0, 0]),
            ("POST", "/checkout", 200, [0, 0, 1, 4, 8, 2, 1, 0, 0]),
            ("POST", "/checkout", 500, [0, 0, 0, 0, 0, 1, 0, 1, 0]),
        ):
            labels = {"http.request.method": method, "http.route": route,
                      "http.response.status_code": status}  # fmt: skip
            if status >= 500:
                labels["error.type"] = "500"
            uppers = [*BOUNDS, 2.0]
            total = sum(n * (upper * 0.8) for n, upper in zip(counts, uppers, strict=True))
            out.append(
                MetricPoint(
                    ts, "http.server.request.duration", total, labels, "histogram", "s",
                    "shop", temporality="delta", count=sum(counts), bounds=BOUNDS,
                    bucket_counts=counts, min=0.001, max=1.5,
                )
            )  # fmt: skip
    return out


def signals(now: float = NOW) -> list[object]:
    """What a small shop writes in its last ten minutes."""
    out: list[object] = []
    for i in range(60):  # requests over the last 10 minutes, two routes, a few failures
        ts = now - 600 + i * 10
        route = "GET /search" if i % 3 else "POST /checkout"
        failed = route == "POST /checkout" and i % 9 == 0
        out.append(
            SpanRecord(
                timestamp=ts,
                name=route,
                trace_id=f"{i:032x}",
                span_id=f"{i:016x}",
                parent_span_id=None,
                duration_ms=5.0 + (i % 7) * 10,
                status="error" if failed else "ok",
                attributes={"http.response.status_code": 500 if failed else 200},
                service="shop",
                span_kind="server",
            )
        )
    out += [
        SpanRecord(
            now - 120,
            "POST /checkout",
            TRACE,
            "a" * 16,
            None,
            80.0,
            "error",
            {"http.response.status_code": 500},
            "shop",
            "server",
        ),
        SpanRecord(now - 119.99, "load_cart", TRACE, "b" * 16, "a" * 16, 10.0, "ok", {}, "shop"),
        SpanRecord(now - 119.97, "charge", TRACE, "c" * 16, "a" * 16, 60.0, "error", {}, "shop"),
        LogRecord(
            now - 119.98,
            "info",
            "checkout started",
            "shop.views",
            {"request_id": REQUEST, "cart_items": 2},
            "shop",
            "test",
            TRACE,
            "a" * 16,
        ),
        LogRecord(
            now - 119.92,
            "warning",
            "payment declined",
            "shop.pay",
            {"request_id": REQUEST},
            "shop",
            "test",
            TRACE,
            "c" * 16,
        ),
        LogRecord(
            now - 300,
            "debug",
            "cache warmed <script>alert(1)</script>",
            "shop.cache",
            {"entries": 12},
            "shop",
            "test",
        ),
        LogRecord(
            now - 200, "error", "inventory sync failed", "shop.inventory", {}, "shop", "test"
        ),
    ]
    for i in range(5):
        out.append(
            ErrorEvent(
                event_id=f"{i:032x}",
                timestamp=now - 500 + i * 95,
                level="error",
                fingerprint=GROUP,
                title="Declined: card declined",
                culprit="shop.pay in pay",
                message="card declined",
                exceptions=[
                    {
                        "type": "Declined",
                        "value": "card declined",
                        "module": "payments.client",
                        "frames": _frames(),
                    }
                ],
                context={"request_id": REQUEST, "route": "/checkout"},
                user={"id": f"u-{i % 3}"},
                tags={"region": "eu-west"},
                breadcrumbs=[
                    {
                        "timestamp": now - 500 + i * 95 - 0.05,
                        "category": "http",
                        "level": "info",
                        "message": "POST /checkout",
                        "data": {"route": "/checkout"},
                    },
                    {
                        "timestamp": now - 500 + i * 95 - 0.02,
                        "category": "shop.pay",
                        "level": "warning",
                        "message": "retrying the payment provider",
                    },
                ],
                service="shop",
                trace_id=TRACE if i == 4 else None,
                regression=i == 3,
            )
        )
    checks = {
        "database:responseTime": [{"status": "pass", "observedValue": 1.2, "observedUnit": "ms"}],
        "payments:responseTime": [{"status": "pass"}],
    }
    failing = {**checks, "payments:responseTime": [{"status": "fail", "output": "timed out"}]}
    out += [
        HealthRecord(now - 3000, "pass", checks, "shop", ["database", "payments"]),
        HealthRecord(now - 400, "fail", failing, "shop", ["payments"]),
        HealthRecord(now - 250, "pass", checks, "shop", ["payments"]),
    ]
    alert = {
        "rule": "HighErrorRate",
        "severity": "critical",
        "labels": {"route": "/checkout"},
        "annotations": {"summary": "checkout fails"},
        "fingerprint": "abc123",
        "service": "shop",
    }
    out += [
        Alert(now - 420, state="pending", value=0.2, **alert),  # type: ignore[arg-type]
        Alert(now - 390, state="firing", value=0.4, **alert),  # type: ignore[arg-type]
        Alert(now - 240, state="resolved", value=0.01, **alert),  # type: ignore[arg-type]
    ]
    for i in range(10):
        out.append(
            MetricPoint(
                now - 600 + i * 60,
                "queue.depth",
                5.0 + i,
                {"queue": "mail"},
                "gauge",
                "{items}",
                "shop",
            )
        )
        out.append(
            MetricPoint(
                now - 600 + i * 60, "queue.depth", 1.0, {"queue": "sms"}, "gauge", "{items}", "shop"
            )
        )
    out.append(
        Anomaly(
            now - 180,
            "queue.depth",
            14.0,
            0.99,
            expected=8.0,
            lower=6.0,
            upper=10.0,
            labels={"queue": "mail"},
            detector="mad",
            service="shop",
        )
    )
    return out + request_histograms(now)


def write_store(path: Path, now: float = NOW) -> Path:
    exporter = SQLiteExporter(path, clock=lambda: now)
    exporter.export(signals(now))
    exporter.shutdown()
    return path


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return write_store(tmp_path / "shop.db")


@pytest.fixture
def dashboard(store_path: Path) -> Dashboard:
    return Dashboard(store_path, clock=lambda: NOW)


def get(base: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET ``base + path``; (status, body) also for error statuses."""
    from urllib.error import HTTPError

    try:
        with urlopen(Request(base + path, headers=headers or {}), timeout=10) as response:
            return response.status, response.read().decode()
    except HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def served(dashboard: Dashboard) -> Iterator[str]:
    """The dashboard on a real loopback HTTP server (the one ``obskit dashboard`` runs)."""
    from obskit.dashboard import DashboardServer

    with DashboardServer(dashboard.db, port=0, clock=dashboard.clock) as server:
        yield server.url.rstrip("/")
