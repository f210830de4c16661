"""The dashboard: a read-only web UI over the SQLite store, served or mounted in an app.

``obskit dashboard --db obskit.db`` serves it on loopback and prints its URL. An application can
show its own next to ``/health`` and ``/metrics``: :func:`asgi_app` (Starlette, FastAPI, any
ASGI server) or :func:`wsgi_app` (Flask, Django, gunicorn), mounted under any path.

Pages: an overview (requests per route, error groups, health, alerts, anomalies), an error
group with one event in full, a trace waterfall with its logs, the logs with filters and a live
tail, and a metrics explorer. No JavaScript framework, no CDN: server-rendered HTML with inline
SVG charts; the stylesheet and a little script ship in the package.

>>> import os, tempfile
>>> from wsgiref.util import setup_testing_defaults
>>> app = wsgi_app(db=os.path.join(tempfile.mkdtemp(), "none.db"))
>>> environ = {}; setup_testing_defaults(environ)
>>> statuses = []
>>> body = b"".join(app(environ, lambda status, headers: statuses.append(status)))
>>> statuses, b"There is no obskit store" in body
(['503 Service Unavailable'], True)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from obskit.dashboard._app import Dashboard
from obskit.dashboard._server import DashboardServer

__all__ = ["Dashboard", "DashboardServer", "asgi_app", "serve", "wsgi_app"]


def asgi_app(db: str | os.PathLike[str], *, token: str | None = None) -> Callable[..., Any]:
    """The dashboard over the store at ``db`` as an ASGI application."""
    return Dashboard(db, token=token).asgi


def wsgi_app(
    db: str | os.PathLike[str], *, token: str | None = None
) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """The dashboard over the store at ``db`` as a WSGI application."""
    return Dashboard(db, token=token).wsgi


def serve(
    db: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
) -> DashboardServer:
    """Serve the dashboard on a daemon thread; ``close()`` the result (or use ``with``)."""
    return DashboardServer(db, host=host, port=port, token=token).start()
