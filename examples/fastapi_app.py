"""A FastAPI service instrumented with obskit: run ``python examples/fastapi_app.py``.

It serves on http://127.0.0.1:8000 (``--port 0`` picks a free port; the first line printed
says where). Try::

    curl -i localhost:8000/orders/7            # 200, with an X-Request-ID header
    curl -i localhost:8000/orders/7 -H "traceparent: 00-$(openssl rand -hex 16)-b7ad6b7169203331-01"
    curl -i localhost:8000/orders/0            # 404 from an HTTPException: not an error
    curl -i localhost:8000/inventory/pen       # 502: one event per route, the handler as culprit
    curl -i localhost:8000/checkout            # 500: an error event with the request's trail
    curl localhost:8000/health/ready           # application/health+json (not traced)

Every request is an ``obskit.request`` named after its route (``GET /orders/{order_id}``), so
the logs (with ``http.route``), breadcrumbs and error events inside it carry its request id and
trace; FastAPI's own server span, if it opens one, is joined, not doubled. The orders table is
SQLite through ``obskit.integrations.dbapi``: each statement is a ``SELECT orders`` client
span with a breadcrumb. A few failed checkouts make the ``high_error_rate`` alert fire (it
watches the failed requests of ``http.server.request.duration``, which the middleware feeds,
per route). Signals go to the console
(pretty on a terminal, JSON lines when piped; errors briefly); uvicorn's log configuration
leaves the exceptions to obskit, so each failure is reported once. Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import copy
import socket
import sqlite3
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException

import obskit
from obskit.integrations import ObskitASGIMiddleware, dbapi

log = obskit.get_logger("shop")

app = FastAPI(title="shop")
app.add_middleware(ObskitASGIMiddleware)  # /health and /metrics are excluded by default
app.mount("/health", obskit.health.asgi_app())  # /health/, /health/live, /health/ready

db = dbapi.wrap(sqlite3.connect(":memory:", check_same_thread=False))
db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, items INTEGER, total REAL)")
db.execute("INSERT INTO orders VALUES (7, 3, 42.0)")


@obskit.health.check("orders-db", critical=True, timeout_s=1, tags=["ready"])
def orders_db() -> bool:
    return db.execute("SELECT 1").fetchone() == (1,)


@obskit.instrument
async def charge(order_id: int) -> None:
    obskit.add_breadcrumb("payments", "charge requested", data={"order_id": order_id})
    raise ConnectionError("payment provider unreachable")


@app.get("/orders/{order_id}")
async def get_order(order_id: int) -> dict[str, Any]:
    row = db.execute("SELECT id, items, total FROM orders WHERE id = ?", (order_id,)).fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail="no such order")
    log.info("order loaded", order_id=order_id, items=row[1])
    return {"id": row[0], "items": row[1], "total": row[2]}


@app.get("/inventory/{sku}")
async def inventory(sku: str) -> dict[str, Any]:
    raise HTTPException(status_code=502, detail="inventory service unavailable")


@app.get("/checkout")
async def checkout() -> dict[str, str]:
    obskit.set_tags(flow="checkout")
    log.info("checkout started", order_id=7)
    await charge(7)
    return {"status": "paid"}


def setup_alerts(evaluation_interval_s: float) -> None:
    """Alert when a route failed more than 3 times in the last minute."""
    obskit.alerts.configure(evaluation_interval_s=evaluation_interval_s, group_wait_s=1)
    obskit.alerts.add_channel("log", obskit.alerts.LogChannel())
    obskit.alerts.add_rule(
        name="high_error_rate",
        metric="http.server.request.duration",
        matchers=['error.type=~".+"'],  # failed requests (an exception, or a 5xx)
        aggregation="count",  # failed requests in the window
        window_s=60,
        op=">",
        threshold=3,
        severity="critical",
        group_by=["alertname", "http.route"],
        annotations={"summary": "{{ labels.http.route }} failed {{ value }} times in a minute"},
        channels=["log"],
    )


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own configuration, minus the tracebacks of exceptions obskit captured."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"captured": {"()": "obskit.logging.stdlib.CapturedExceptionFilter"}}
    config["handlers"]["default"]["filters"] = ["captured"]
    return config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--alert-interval", type=float, default=5.0, help="seconds")
    args = parser.parse_args(argv)

    obskit.init(service="shop-api", environment="dev", tags={"region": "local"}, slow_ms=500)
    setup_alerts(args.alert_interval)
    listener = socket.create_server((args.host, args.port))
    host, port = listener.getsockname()[:2]
    print(f"serving on http://{host}:{port}", flush=True)
    config = uvicorn.Config(
        app, log_config=uvicorn_log_config(), log_level="warning", access_log=False
    )
    try:
        uvicorn.Server(config).run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn shut down gracefully, then passed Ctrl-C on
        pass
    finally:
        obskit.shutdown()


if __name__ == "__main__":
    main()
