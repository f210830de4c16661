"""The health endpoints, as an ASGI app, a WSGI app, or a standard-library server of their own.

Every form answers the same routes (also under whatever prefix the app is mounted at):

- ``/health``: every enabled check;
- ``/health/live``: the process answers (plus checks tagged ``live``, if any);
- ``/health/ready``, ``/health/startup``, ``/health/<tag>``: the checks tagged so (Spring Boot's
  health groups, ASP.NET Core's tag predicates); a tag no check carries is 404, except for
  ``live``, ``ready`` and ``startup`` which pass while empty.

The body is ``application/health+json`` (the IETF draft); HTTP 200 for pass and warn, 503 for
fail; ``Cache-Control: no-store``.

Who sees details (check names, outputs, hosts, timings; they help an attacker): by default
(``verbose=None``) a client on the loopback interface that did not come through a proxy
(no ``Forwarded``/``X-Forwarded-For``), and a request with ``Authorization: Bearer <token>``
when ``token`` is set; everyone else gets the status only, as Spring Boot's actuator answers by
default. ``verbose=True`` shows details to everyone, ``False`` to no one, and a function of the
request headers (lower-case names) decides per request. Bodies never echo the request, and the
standard-library server sends no ``Server`` header naming its version.
"""

from __future__ import annotations

import hmac
import ipaddress
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

Verbose: TypeAlias = "bool | Callable[[Mapping[str, str]], bool] | None"
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

    def __init__(self, registry: HealthRegistry, verbose: Verbose, token: str | None) -> None:
        if token is not None and (not isinstance(token, str) or not token):
            raise diagnostics.ConfigError("health endpoint: token must be a non-empty string")
        self.registry = registry
        self.verbose = verbose
        self.token = token

    def known_tags(self) -> set[str]:
        return {tag for spec in self.registry._specs() for tag in spec.tags}

    def decide(self, method: str, path: str) -> tuple[object | str | None, Response | None]:
        """The route, or a ready response when the request is not a health query."""
        if method not in ("GET", "HEAD"):
            doc = {"status": "fail", "output": "use GET or HEAD"}
            return None, _simple(405, doc, [("Allow", "GET, HEAD")])
        target = route(path, self.known_tags)
        if target is None:
            return None, _simple(404, {"status": "fail", "output": "no such health route"})
        return target, None

    def tags(self, target: object | str) -> tuple[str, ...] | None:
        return None if target is _ALL else (str(target),)

    def may_see_details(self, headers: Mapping[str, str], client: str | None) -> bool:
        if self.token is not None and _bearer_matches(headers, self.token):
            return True
        if self.verbose is None:
            return _is_local(client) and not (
                "forwarded" in headers or "x-forwarded-for" in headers
            )
        if not callable(self.verbose):
            return bool(self.verbose)
        try:
            return bool(self.verbose(headers))
        except Exception as exc:  # a broken authorisation hook hides details, never errors
            diagnostics.report("health.verbose", f"the health verbose hook raised {exc!r}")
            return False


def _bearer_matches(headers: Mapping[str, str], token: str) -> bool:
    given = headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.encode()
    )


def _is_local(client: str | None) -> bool:
    """Whether ``client`` is a loopback address (``::ffff:127.0.0.1`` included)."""
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)


def make_asgi_app(
    registry: HealthRegistry, *, verbose: Verbose = None, token: str | None = None
) -> ASGIApp:
    """The endpoints as an ASGI 3 app (checks run on the server's event loop)."""
    endpoint = _Endpoint(registry, verbose, token)

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
                client = (scope.get("client") or (None,))[0]
                response = render(report, endpoint.may_see_details(headers, client))
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


def make_wsgi_app(
    registry: HealthRegistry, *, verbose: Verbose = None, token: str | None = None
) -> WSGIApp:
    """The endpoints as a WSGI app (checks run on the registry's own thread)."""
    endpoint = _Endpoint(registry, verbose, token)

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
                client = environ.get("REMOTE_ADDR")
                response = render(report, endpoint.may_see_details(headers, client))
            except Exception as exc:
                response = _error(exc)
        status, header_list, body = response
        start_response(f"{status} {HTTPStatus(status).phrase}", header_list)
        return [b"" if method == "HEAD" else body]

    return app


class _QuietHandler(WSGIRequestHandler):
    """wsgiref's handler, minus a stderr line per request (probes poll every few seconds),
    minus the ``Server`` version banner, and with a read timeout (an idle or slow client
    cannot hold a thread)."""

    timeout = 10.0
    server_version = "obskit"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingServer(WSGIServer):
    """A WSGI server answering each request on its own daemon thread, ``max_threads`` at most
    (past that, a new connection is closed at once and counted)."""

    daemon_threads = True
    max_threads = 32
    request_queue_size = 64  # the listen backlog (socketserver's default is 5)

    def server_activate(self) -> None:
        super().server_activate()
        self._slots = threading.BoundedSemaphore(self.max_threads)

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for socket.getfqdn(host): slow where DNS is not there.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)
        self.setup_environ()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            diagnostics.report(
                "health.server_busy",
                f"the health server is answering {self.max_threads} requests already; "
                "closed a new connection",
            )
            self.shutdown_request(request)
            return
        thread = threading.Thread(
            target=self._handle, args=(request, client_address), name="obskit-health-http"
        )
        thread.daemon = True
        thread.start()

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except TimeoutError:
            pass  # an idle or slow client, dropped after the handler's read timeout
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        diagnostics.report("health.server", "the health server failed to answer a request")


def _without_server_banner(app: WSGIApp) -> WSGIApp:
    """wsgiref adds ``Server: WSGIServer/0.2 CPython/3.x`` unless the app sent one."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            return start_response(status, [*headers, ("Server", "obskit")], *rest)

        return app(environ, start)

    return wrapped


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
        self,
        registry: HealthRegistry,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        verbose: Verbose = None,
        token: str | None = None,
    ) -> None:
        server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
        self._server = server_class((host, port), _QuietHandler)
        app = make_wsgi_app(registry, verbose=verbose, token=token)
        self._server.set_app(_without_server_banner(app))
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
