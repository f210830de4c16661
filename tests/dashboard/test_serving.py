"""Serving: `obskit dashboard`, the token, and the dashboard mounted in ASGI and WSGI apps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import HTTPRedirectHandler, Request, build_opener

import pytest

import obskit
from obskit.dashboard import DashboardServer, asgi_app, wsgi_app

from ..loopback import uvicorn_server, werkzeug_server
from .conftest import GROUP, NOW, get


def test_binding_another_host_needs_a_token(store_path: Path) -> None:
    with pytest.raises(obskit.ConfigError, match="--token"):
        DashboardServer(store_path, host="0.0.0.0")


def test_cli_refuses_a_public_host_without_token(store_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "obskit.cli",
            "dashboard",
            "--db",
            str(store_path),
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert run.returncode == 2
    assert "set a token" in run.stderr


def test_cli_serves_and_prints_its_url(store_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "obskit.cli", "dashboard", "--db", str(store_path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        lines = [process.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]
        url = lines[1].split("open ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        status, html = get(url.rstrip("/"), "/?range=7d")
        assert status == 200 and "obskit" in html
    finally:
        process.terminate()
        process.wait(10)


def test_token_is_checked_on_every_request(store_path: Path) -> None:
    with DashboardServer(store_path, host="127.0.0.1", token="s3cret", clock=lambda: NOW) as server:
        base = f"http://127.0.0.1:{server.port}"
        assert server.url.endswith("/?token=s3cret")
        for path in ("/", "/logs", "/static/dashboard.css", f"/errors/{GROUP}", "/logs/tail"):
            assert get(base, path)[0] == 401
        assert get(base, "/?token=wrong")[0] == 401
        assert get(base, "/", {"Authorization": "Bearer s3cret"})[0] == 200
        # the printed URL sets a cookie and redirects to the same page without the token
        with pytest.raises(HTTPError) as redirect:
            build_opener(_NoRedirect()).open(Request(base + "/logs?token=s3cret&range=1h"))
        assert redirect.value.code == 303
        assert redirect.value.headers["Location"] == "/logs?range=1h"
        cookie = redirect.value.headers["Set-Cookie"].split(";")[0]
        assert "HttpOnly" in redirect.value.headers["Set-Cookie"]
        assert get(base, "/logs", {"Cookie": cookie})[0] == 200
        assert get(base, "/logs", {"Cookie": "obskit_dashboard_token=nope"})[0] == 401


def test_mounted_in_an_asgi_app_under_a_prefix(store_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    app = Starlette(
        routes=[
            Route("/health", lambda request: PlainTextResponse("ok")),
            Mount("/dashboard", app=asgi_app(db=store_path)),
        ]
    )
    with uvicorn_server(app) as base:
        status, html = get(base, "/dashboard/?range=7d")
        assert status == 200
        assert 'href="/dashboard/logs?range=7d"' in html  # links stay under the mount
        assert 'href="/dashboard/static/dashboard.css?v=' in html
        assert get(base, "/dashboard/static/dashboard.js")[0] == 200
        assert get(base, "/health") == (200, "ok")


def test_mounted_in_a_wsgi_app_under_a_prefix(store_path: Path) -> None:
    from flask import Flask
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    flask_app = Flask("shop")
    flask_app.add_url_rule("/health", "health", lambda: "ok")
    app = DispatcherMiddleware(flask_app, {"/dashboard": wsgi_app(db=store_path)})
    with werkzeug_server(app) as base:
        status, html = get(base, "/dashboard/logs?range=7d")
        assert status == 200 and 'action="/dashboard/logs"' in html
        assert get(base, "/health") == (200, "ok")


class _NoRedirect(HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def test_the_readme_tour_ends_in_the_dashboard(tmp_path: Path, monkeypatch) -> None:
    import re

    from obskit.dashboard import Dashboard
    from obskit.dashboard._app import Request

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    tour = re.search(r"```python\n(.*?)```", readme, re.DOTALL)
    assert tour is not None
    after = readme[tour.end() :].split("\n## ")[0]
    assert "obskit dashboard --db shop.db" in after  # the tour's last step
    monkeypatch.chdir(tmp_path)
    exec(compile(tour.group(1), "README.md", "exec"), {"__name__": "readme"})
    obskit.shutdown()
    page = Dashboard(tmp_path / "shop.db").handle(Request("GET", "/", {"range": "15m"}))
    html = page.body.decode()
    assert page.status == 200 and "RuntimeError: card declined" in html
    assert "POST /checkout" in html and '<th scope="row">db</th>' in html


def test_the_wheel_ships_the_stylesheet_and_script(tmp_path: Path) -> None:
    import zipfile

    builders = pytest.importorskip("hatchling.builders.wheel", reason="hatchling builds it")
    root = Path(__file__).resolve().parents[2]
    (wheel,) = builders.WheelBuilder(str(root)).build(
        directory=str(tmp_path), versions=["standard"]
    )
    names = zipfile.ZipFile(wheel).namelist()
    for asset in ("dashboard.css", "dashboard.js"):
        assert f"obskit/dashboard/static/{asset}" in names
