"""The health endpoints, as an ASGI app, a WSGI app, or a standard-library server of their own.

Every form answers the same routes (also under whatever prefix the app is mounted at):

- ``/health``: every enabled check;
- ``/health/live``: the process answers (plus checks tagged ``live``, if any);
- ``/health/ready``, ``/health/startup``, ``/health/<tag>``: the checks tagged so (Spring Boot's
  health groups, ASP.NET Core's tag predicates); a tag no check carries is 404, except for
  ``live``, ``ready`` and ``startup`` which pass while empty.

The body is ``application/health+json`` (the IETF draft); HTTP 200 for pass and warn, 503 for
fail; ``Cache-Control: no-store``. ``verbose`` is ``True``, ``False`` (status only, the way
Spring Boot's ``show-details: never`` answers unauthenticated callers) or a function of the
request headers (lower-case names) returning whether this caller may see details.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeAlias
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from obskit import _runtime, diagnostics
from obskit.health.model import HealthReport
from obskit.scrubbing import Scrubber, safe_repr

if TYPE_CHECKING:
    from obskit.health.registry import HealthRegistry

__all__ = ["CONTENT_TYPE", "HealthServer", "make_asgi_app", "make_wsgi_app"]

CONTENT_TYPE = "application/health+json"
#: Groups that answer even when no check carries their tag (an empty group passes).
WELL_KNOWN_GROUPS = frozenset({"live", "ready", "startup"})

Verbose: TypeAlias = "bool | Callable[[Mapping[str, str]], bool]"
Scope: TypeAlias = "MutableMapping[str, Any]"
ASGIApp: TypeAlias = "Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]"  # noqa: E501
WSGIApp: TypeAlias = "Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]"
Response: TypeAlias = "tuple[int, list[tuple[str, str]], bytes]"

_ALL = object()  # the route of the full report
_DEFAULT_SCRUBBER = Scrubber()


def route(path: str, known_tags: Callable[[], set[str]]) -> object | str | None:
    """What a path asks for: ``_ALL``, a tag, or ``None`` (not a health route: 404)."""
    parts = [part for part in path.split("/") if part]
    if parts and parts[0] == "health":
        parts = parts[1:]
    if not parts:
        return _ALL
    if len(parts) == 1 and (parts[0] in WELL_KNOWN_GROUPS or parts[0] in known_tags()):
        return parts[0]
    return None


def render(report: HealthReport, verbose: bool) -> Response:
    """Status code, headers and JSON body for a report (messages scrubbed of secrets)."""
    doc = _scrubbed(report.to_dict(verbose=verbose))
    body = json.dumps(doc, default=safe_repr).encode()
    return report.http_status, _headers(body), body


def _scrubbed(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with what checks wrote (outputs, details, values) through obskit's scrubber.

    Only those: check names are not secrets, and a name like "auth:responseTime" must survive.
    """
    runtime = _runtime.peek()
    scrubber = runtime.pipeline.scrubber if runtime is not None else _DEFAULT_SCRUBBER
    if "output" in doc:
        doc["output"] = scrubber.clean_text(doc["output"])
    for entries in doc.get("checks", {}).values():
        for entry in entries:
            if "output" in entry:
                entry["output"] = scrubber.clean_text(entry["output"])
            if "details" in entry:
                entry["details"] = scrubber.clean_mapping(entry["details"])
            if "observedValue" in entry:
                entry["observedValue"] = scrubber.clean_value(entry["observedValue"])
    return doc


def _headers(body: bytes) -> list[tuple[str, str]]:
    return [
        ("Content-Type", CONTENT_TYPE),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ]


def _simple(status: int, doc: dict[str, Any], extra: Iterable[tuple[str, str]] = ()) -> Response:
    body = json.dumps(doc).encode()
    return status, [*_headers(body), *extra], body


def _error(exc: BaseException) -> Response:
    diagnostics.report("health.endpoint", f"the health endpoint failed: {exc!r}")
    return _simple(503, {"status": "fail", "output": "the health endpoint failed"})


class _Endpoint:
    """What the ASGI and WSGI forms share: routing, method and verbosity decisions."""

    def __init__(self, registry: HealthRegistry, verbose: Verbose) -> None:
        self.registry = registry
        self.verbose = verbose

    def known_tags(self) -> set[str]:
        return {tag for spec in self.registry._specs() for tag in spec.tags}

    def decide(self, method: str, path: str) -> tuple[object | str | None, Response | None]:
        """The route, or a ready response when the request is not a health query."""
        if method not in ("GET", "HEAD"):
            doc = {"status": "fail", "output": "use GET or HEAD"}
            return None, _simple(405, doc, [("Allow", "GET, HEAD")])
        target = route(path, self.known_tags)
        if target is None:
            return None, _simple(404, {"status": "fail", "output": f"no health route {path}"})
        return target, None

    def tags(self, target: object | str) -> tuple[str, ...] | None:
        return None if target is _ALL else (str(target),)

    def may_see_details(self, headers: Mapping[str, str]) -> bool:
        if not callable(self.verbose):
            return bool(self.verbose)
        try:
            return bool(self.verbose(headers))
        except Exception as exc:  # a broken authorisation hook hides details, never errors
            diagnostics.report("health.verbose", f"the health verbose hook raised {exc!r}")
            return False


def make_asgi_app(registry: HealthRegistry, *, verbose: Verbose = True) -> ASGIApp:
    """The endpoints as an ASGI 3 app (checks run on the server's event loop)."""
    endpoint = _Endpoint(registry, verbose)

    async def app(
        scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
    ) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        method = scope.get("method", "GET")
        target, response = endpoint.decide(method, path)
        if response is None:
            headers = {
                key.decode("latin-1").lower(): value.decode("latin-1")
                for key, value in scope.get("headers", [])
            }
            try:
                report = await registry.run_async(endpoint.tags(target))
                response = render(report, endpoint.may_see_details(headers))
            except Exception as exc:
                response = _error(exc)
        status, header_list, body = response
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in header_list],
            }
        )
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    return app


async def _lifespan(
    receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def make_wsgi_app(registry: HealthRegistry, *, verbose: Verbose = True) -> WSGIApp:
    """The endpoints as a WSGI app (checks run on the registry's own thread)."""
    endpoint = _Endpoint(registry, verbose)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        target, response = endpoint.decide(method, environ.get("PATH_INFO", ""))
        if response is None:
            headers = {
                key[5:].replace("_", "-").lower(): str(value)
                for key, value in environ.items()
                if key.startswith("HTTP_")
            }
            try:
                report = registry.run(endpoint.tags(target))
                response = render(report, endpoint.may_see_details(headers))
            except Exception as exc:
                response = _error(exc)
        status, header_list, body = response
        start_response(f"{status} {HTTPStatus(status).phrase}", header_list)
        return [b"" if method == "HEAD" else body]

    return app


class _QuietHandler(WSGIRequestHandler):
    """wsgiref's handler, minus a stderr line per request (probes poll every few seconds)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingServer(WSGIServer):
    """A WSGI server answering each request on its own daemon thread."""

    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for socket.getfqdn(host): slow where DNS is not there.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)
        self.setup_environ()

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._handle, args=(request, client_address), name="obskit-health-http"
        )
        thread.daemon = True
        thread.start()

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        diagnostics.report("health.server", "the health server failed to answer a request")


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class HealthServer:
    """The endpoints on a standard-library HTTP server, in a daemon thread.

    >>> import json, urllib.request
    >>> import obskit
    >>> from obskit.health import HealthRegistry
    >>> obskit.init(exporters=[])
    >>> registry = HealthRegistry()
    >>> registry.register("db", lambda: True)
    >>> with registry.serve(port=0) as server:
    ...     with urllib.request.urlopen(f"{server.url}/health") as response:
    ...         json.load(response)["status"], response.headers["Content-Type"]
    ('pass', 'application/health+json')
    >>> obskit.shutdown()
    """

    def __init__(
        self, registry: HealthRegistry, host: str = "127.0.0.1", port: int = 0, *, verbose: Verbose
    ) -> None:
        server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
        self._server = server_class((host, port), _QuietHandler)
        self._server.set_app(make_wsgi_app(registry, verbose=verbose))
        self.host: str = host
        self.port: int = int(self._server.server_address[1])
        registry.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"obskit-health-server-{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The server's base URL (``/health`` and friends hang off it)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2.0)

    def __enter__(self) -> HealthServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
