"""``obskit dashboard``: the dashboard on a standard-library HTTP server (no extra dependency).

Loopback only unless a token is set: the pages show what the application logged, which may
include personal data. Each request is answered on its own daemon thread, so a slow page or a
polling live tail never holds up another.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from obskit.dashboard._app import Dashboard
from obskit.diagnostics import ConfigError

__all__ = ["DashboardServer", "is_loopback"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # the live tail polls every two seconds: no line per request


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves socket.getfqdn(host): slow where DNS is not there.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)
        self.setup_environ()


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class DashboardServer:
    """The dashboard served on ``host:port`` (port 0 picks a free one) in a daemon thread.

    ``clock`` gives "now" (tests). A host other than loopback needs ``token``: without one
    this raises :class:`~obskit.ConfigError` before binding anything.
    """

    def __init__(
        self,
        db: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not is_loopback(host) and not token:
            raise ConfigError(
                f"obskit dashboard: binding {host} makes the dashboard reachable from other "
                "machines; set a token (--token T, or token=...) that every request must "
                "carry, or keep the default host 127.0.0.1"
            )
        self.dashboard = Dashboard(db, token=token, clock=clock)
        self.token = token
        server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
        self._server = server_class((host, port), _QuietHandler)
        self._server.set_app(self.dashboard.wsgi)
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The address to open (with ``?token=`` when a token is set)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        base = f"http://{host}:{self.port}/"
        return f"{base}?token={self.token}" if self.token else base

    def start(self) -> DashboardServer:
        """Serve on a daemon thread; returns ``self``."""
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"obskit-dashboard-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on this thread until :meth:`close` (or Ctrl-C)."""
        self._server.serve_forever(poll_interval=0.2)

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(2.0)
        self._server.server_close()

    def __enter__(self) -> DashboardServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
