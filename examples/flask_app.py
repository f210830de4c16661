"""A Flask service instrumented with obskit: run ``python examples/flask_app.py``.

It serves on http://127.0.0.1:5000 with werkzeug's threaded server (``--port 0`` picks a free
port; the first line printed says where). Try::

    curl -i localhost:5000/orders/7            # 200, with an X-Request-Id header
    curl -i localhost:5000/checkout            # Flask's 500 page, and an error event
    curl localhost:5000/report                 # a streamed response, timed to its end
    curl localhost:5000/health/ready           # application/health+json, not traced

``ObskitWSGIMiddleware`` wraps ``app.wsgi_app``: each request is an ``obskit.request`` named
after its Flask rule (``GET /orders/<int:order_id>``), with the request's context on every log
line. The health endpoints are mounted beside the app, outside the middleware, so probes do not
count as traffic. Signals go to the console. Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, abort, stream_with_context
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server

import obskit
from obskit.integrations import ObskitWSGIMiddleware

log = obskit.get_logger("shop")
app = Flask("shop")
ORDERS = {7: {"id": 7, "items": 3, "total": 42.0}}


@obskit.health.check("orders-db", critical=True, timeout_s=1, tags=["ready"])
def orders_db() -> bool:
    return True


@app.get("/orders/<int:order_id>")
def get_order(order_id: int) -> Any:
    order = ORDERS.get(order_id) or abort(404)
    log.info("order loaded", order_id=order_id, items=order["items"])
    return order


@app.get("/checkout")
def checkout() -> Any:
    log.info("checkout started", order_id=7)
    obskit.add_breadcrumb("payments", "charge requested", data={"order_id": 7})
    raise ConnectionError("payment provider unreachable")


@app.get("/report")
def report() -> Response:
    def lines() -> Iterator[str]:
        for day in range(3):
            time.sleep(0.05)  # a slow query per line
            log.info("report line", day=day)
            yield f"day {day}: ok\n"

    return Response(stream_with_context(lines()), mimetype="text/plain")


app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
    ObskitWSGIMiddleware(app.wsgi_app), {"/health": obskit.health.wsgi_app()}
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)

    obskit.init(service="shop-flask", environment="dev")
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"serving on http://{args.host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        obskit.shutdown()


if __name__ == "__main__":
    main()
