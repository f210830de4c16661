"""A FastAPI service instrumented with obskit: run ``python examples/fastapi_app.py``.

It serves on http://127.0.0.1:8000 (``--port 0`` picks a free port; the first line printed
says where). Try::

    curl -i localhost:8000/orders/7            # 200, with an X-Request-ID header
    curl -i localhost:8000/orders/7 -H "traceparent: 00-$(openssl rand -hex 16)-b7ad6b7169203331-01"
    curl -i localhost:8000/orders/0            # 404 from an HTTPException: not an error
    curl -i localhost:8000/checkout            # 500: an error event with the request's trail
    curl localhost:8000/health/ready           # application/health+json

Every request is an ``obskit.request`` named after its route (``GET /orders/{order_id}``), so
the logs, breadcrumbs and error events inside it carry its request id and trace. A few failed
checkouts make the ``high_error_rate`` alert fire (it watches the failed requests of
``http.server.request.duration``, which the middleware feeds, per route). Signals go to the
console: pretty on a terminal, JSON lines when piped. Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException

import obskit
from obskit.integrations import ObskitASGIMiddleware

log = obskit.get_logger("shop")

app = FastAPI(title="shop")
app.add_middleware(ObskitASGIMiddleware)
app.mount("/health", obskit.health.asgi_app())  # /health/, /health/live, /health/ready

ORDERS = {7: {"id": 7, "items": 3, "total": 42.0}}


@obskit.health.check("orders-db", critical=True, timeout_s=1, tags=["ready"])
def orders_db() -> bool:
    return True  # a real service would ping its database here


@obskit.instrument
async def charge(order_id: int) -> None:
    obskit.add_breadcrumb("payments", "charge requested", data={"order_id": order_id})
    raise ConnectionError("payment provider unreachable")


@app.get("/orders/{order_id}")
async def get_order(order_id: int) -> dict[str, Any]:
    order = ORDERS.get(order_id)
    if order is None:
        raise HTTPException(status_code=404, detail="no such order")
    log.info("order loaded", order_id=order_id, items=order["items"])
    return order


@app.get("/checkout")
async def checkout() -> dict[str, str]:
    log.info("checkout started", order_id=7)
    await charge(7)
    return {"status": "paid"}


def setup_alerts(evaluation_interval_s: float) -> None:
    """Alert when a route failed more than 3 times in the last minute (0.05 a second)."""
    obskit.alerts.configure(evaluation_interval_s=evaluation_interval_s, group_wait_s=1)
    obskit.alerts.add_channel("log", obskit.alerts.LogChannel())
    obskit.alerts.add_rule(
        name="high_error_rate",
        metric="http.server.request.duration",
        matchers=['error.type=~".+"'],  # failed requests (an exception, or a 5xx)
        aggregation="rate",
        window_s=60,
        op=">",
        threshold=0.05,
        severity="critical",
        group_by=["alertname", "http.route"],
        annotations={"summary": "{{ labels.http.route }} fails {{ value }} times a second"},
        channels=["log"],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--alert-interval", type=float, default=5.0, help="seconds")
    args = parser.parse_args(argv)

    obskit.init(service="shop-api", environment="dev")
    setup_alerts(args.alert_interval)
    listener = socket.create_server((args.host, args.port))
    host, port = listener.getsockname()[:2]
    print(f"serving on http://{host}:{port}", flush=True)
    # obskit reports the app's exceptions; uvicorn would print each one again.
    config = uvicorn.Config(app, log_level="critical", access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn shut down gracefully, then passed Ctrl-C on
        pass
    finally:
        obskit.shutdown()


if __name__ == "__main__":
    main()
