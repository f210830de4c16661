"""The dashboard as one request handler, served through WSGI or ASGI.

Each request opens the store, runs a few short read queries and closes it: a page never holds a
read transaction open, so the writing application never waits for it. Whatever goes wrong
(no store yet, a corrupt file, a locked one, an unknown id) becomes a page that says so.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from obskit import diagnostics
from obskit.dashboard import _pages
from obskit.dashboard._html import Html
from obskit.dashboard._layout import Page, View, notice, static_file
from obskit.dashboard._queries import Window
from obskit.store import Store

__all__ = ["Dashboard", "Request", "Response"]

TOKEN_COOKIE = "obskit_dashboard_token"
_SECURITY_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'self'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
]


@dataclass
class Request:
    """What the handler needs of an HTTP request, whichever server brought it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    prefix: str = ""  # where the dashboard is mounted (WSGI SCRIPT_NAME, ASGI root_path)


@dataclass
class Response:
    """Status, headers and body of an answer."""

    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    def all_headers(self) -> list[tuple[str, str]]:
        return [
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            *_SECURITY_HEADERS,
            *self.headers,
        ]


class Dashboard:
    """The read-only dashboard over the SQLite store at ``db``.

    ``token``, when set, is required on every request: as ``Authorization: Bearer <token>``,
    or once as ``?token=<token>`` (then kept in a cookie). ``clock`` gives "now" (tests).
    """

    def __init__(
        self,
        db: str | os.PathLike[str],
        *,
        token: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = Path(db)
        self.token = token or None
        self.clock = clock

    # -- the core ----------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one request; never raises."""
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed\n", "text/plain", [("Allow", "GET, HEAD")])
        if self.token is not None:
            denied = self._check_token(request)
            if denied is not None:
                return denied
        if request.path.startswith("/static/"):
            found = static_file(request.path.removeprefix("/static/"))
            if found is None:
                return Response(404, b"not found\n", "text/plain")
            return Response(200, found[0], found[1], [("Cache-Control", "max-age=86400")])
        started = time.perf_counter()
        view = self._view(request)
        try:
            answer = self._render(request, view)
        except Exception as exc:  # the page says what happened; the server keeps serving
            diagnostics.report("dashboard.page", f"dashboard: {request.path}: {exc!r}")
            answer = _problem_page(exc, self.db)
        if isinstance(answer, Response):
            return answer
        elapsed_ms = (time.perf_counter() - started) * 1000
        body = answer.render(view).replace("</main>", _footer(elapsed_ms) + "</main>", 1)
        return Response(answer.status, body.encode(), headers=[("Cache-Control", "no-store")])

    def _view(self, request: Request) -> View:
        params = {k: v for k, v in request.query.items() if k != "token"}
        end = _float(params.get("end"))
        now = self.clock()
        window = Window.of(params.get("range"), now, end)
        return View(request.prefix, request.path, params, window, now, self.db.name)

    def _render(self, request: Request, view: View) -> Page | Response:
        route, _, rest = request.path.lstrip("/").partition("/")
        handler = _pages.ROUTES.get(route)
        if handler is None or (rest and route not in _pages.WITH_ID):
            return Page("Not found", notice("There is no such page.", kind="warn"), 404)
        try:
            store = Store(self.db)
        except FileNotFoundError:
            return _missing_store_page(self.db)
        try:
            result = handler(store, view, rest)
        finally:
            store.close()
        if isinstance(result, dict):  # a JSON answer (the live tail)
            return Response(
                200,
                json.dumps(result).encode(),
                "application/json",
                [("Cache-Control", "no-store")],
            )
        return result

    def _check_token(self, request: Request) -> Response | None:
        expected = self.token or ""
        given = request.query.get("token")
        if given is not None and hmac.compare_digest(given.encode(), expected.encode()):
            rest = {k: v for k, v in request.query.items() if k != "token"}
            location = (request.prefix + request.path) or "/"
            if rest:
                location += "?" + urlencode(rest)
            cookie = (
                f"{TOKEN_COOKIE}={quote(expected)}; Path={request.prefix or '/'}; "
                "HttpOnly; SameSite=Strict"
            )
            return Response(
                303, b"", "text/plain", [("Location", location), ("Set-Cookie", cookie)]
            )
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer ") and hmac.compare_digest(
            header[7:].strip().encode(), expected.encode()
        ):
            return None
        cookie_token = _cookie(request.headers.get("cookie", ""), TOKEN_COOKIE)
        if cookie_token is not None and hmac.compare_digest(
            cookie_token.encode(), expected.encode()
        ):
            return None
        body = (
            "This dashboard needs its token: open the URL `obskit dashboard` printed "
            "(it ends in ?token=...), or send Authorization: Bearer <token>.\n"
        )
        return Response(
            401,
            body.encode(),
            "text/plain; charset=utf-8",
            [("WWW-Authenticate", 'Bearer realm="obskit dashboard"')],
        )

    # -- WSGI ----------------------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The WSGI application (mount it under any path; ``SCRIPT_NAME`` is honoured)."""
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        request = Request(
            method=environ.get("REQUEST_METHOD", "GET").upper(),
            path=_path_of(environ.get("PATH_INFO", "")),
            query=dict(parse_qsl(environ.get("QUERY_STRING", ""))),
            headers=headers,
            prefix=environ.get("SCRIPT_NAME", "").rstrip("/"),
        )
        response = self.handle(request)
        start_response(f"{response.status} {_reason(response.status)}", response.all_headers())
        return [b""] if request.method == "HEAD" else [response.body]

    # -- ASGI ----------------------------------------------------------------------------------

    async def asgi(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Any],
        send: Callable[[dict[str, Any]], Any],
    ) -> None:
        """The ASGI application: pages render on a worker thread, the event loop stays free."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        prefix = scope.get("root_path", "").rstrip("/")
        path = scope.get("path", "/")
        if prefix and path.startswith(prefix):  # servers disagree whether path includes it
            path = path[len(prefix) :]
        request = Request(
            method=scope.get("method", "GET").upper(),
            path=_path_of(path),
            query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
            prefix=prefix,
        )
        response = await asyncio.get_running_loop().run_in_executor(None, self.handle, request)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in response.all_headers()],
            }
        )
        body = b"" if request.method == "HEAD" else response.body
        await send({"type": "http.response.body", "body": body})


# -- pages for problems ------------------------------------------------------------------------


def _missing_store_page(db: Path) -> Page:
    text = Html(
        "<p>There is no obskit store at <code>{}</code> yet.</p>"
        "<p>An application writes one when its exporters include SQLite: "
        "<code>obskit.init(exporters=[SQLiteExporter(&quot;{}&quot;)])</code>, or try "
        "<code>obskit demo --out DIR</code> and <code>obskit dashboard --db DIR/demo.db</code>. "
        "This page refreshes itself until the store appears.</p>"
    ).format(str(db), db.name)
    return Page(
        "No store yet",
        Html('<section class="card problem">{}</section>').format(text),
        503,
        ranged=False,
    )


def _problem_page(exc: Exception, db: Path) -> Page:
    text = str(exc).lower()
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        title, status = "The store is busy", 503
        detail = "Another process holds a write lock on the store; this page retries shortly."
    elif isinstance(exc, sqlite3.DatabaseError):
        title, status = "The store cannot be read", 500
        detail = (
            f"{db} is not a readable obskit store ({exc}). If the file is corrupt, the "
            "application's SQLiteExporter moves it aside and starts a new one on its next write."
        )
    else:
        title, status = "This page failed", 500
        detail = f"The dashboard could not render this page: {type(exc).__name__}: {exc}"
    body = Html('<section class="card problem"><h2>{}</h2><p>{}</p></section>').format(
        title, detail
    )
    return Page(title, body, status, ranged=False)


def _footer(elapsed_ms: float) -> Html:
    return Html("<footer>read-only view · rendered in {} ms</footer>").format(f"{elapsed_ms:.0f}")


# -- small helpers -----------------------------------------------------------------------------


def _path_of(raw: str) -> str:
    path = "/" + raw.lstrip("/")
    return path if path == "/" else path.rstrip("/")


def _float(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _cookie(header: str, name: str) -> str | None:
    from urllib.parse import unquote

    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return unquote(value)
    return None


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
