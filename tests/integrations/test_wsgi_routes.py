"""ObskitWSGIMiddleware on a Flask app served by werkzeug on loopback: route names for routed,
unmatched and excluded paths, ``http.route`` on logs, the view as the culprit of a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask import Flask

import obskit
from obskit.exporters import InMemoryExporter
from obskit.integrations import ObskitWSGIMiddleware

from .conftest import settled, werkzeug_server

log = obskit.get_logger("shop")


def shop() -> Flask:
    app = Flask("shop")

    @app.get("/users/<int:user_id>")
    def user(user_id: int) -> Any:
        log.info("user loaded", user_id=user_id)
        return {"id": user_id}

    @app.get("/upstream")
    def upstream() -> Any:
        return "inventory down", 502

    @app.get("/healthz")
    def healthz() -> Any:
        log.info("probed")
        return "ok"

    app.wsgi_app = ObskitWSGIMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with werkzeug_server(shop()) as url:
        yield url


def test_routed_unmatched_and_excluded_paths(server: str, quiet_memory: InMemoryExporter) -> None:
    assert httpx.get(f"{server}/users/3").status_code == 200
    assert httpx.get(f"{server}/nowhere").status_code == 404
    assert httpx.get(f"{server}/healthz").status_code == 200
    spans = settled(quiet_memory, spans=2).spans
    assert sorted(s.name for s in spans) == ["GET /users/<int:user_id>", "GET <unrouted>"]
    routes = {r.event: r.fields.get("http.route") for r in quiet_memory.logs}
    assert routes == {"user loaded": "/users/<int:user_id>", "probed": None}


def test_5xx_is_grouped_by_route_with_the_view_as_culprit(
    server: str, quiet_memory: InMemoryExporter
) -> None:
    for _ in range(2):
        assert httpx.get(f"{server}/upstream").status_code == 502
    events = settled(quiet_memory, spans=2).errors
    assert [e.title for e in events] == ["HTTP 502 GET /upstream"] * 2
    assert events[0].fingerprint == events[1].fingerprint
    assert events[0].culprit.endswith("in shop.<locals>.upstream")
