"""The pages over a known store, through the real loopback server `obskit dashboard` runs."""

from __future__ import annotations

import json
import re

from .conftest import GROUP, REQUEST, TRACE, get


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_overview_shows_routes_errors_health_alerts_anomalies(served: str) -> None:
    status, html = get(served, "/?range=15m")
    assert status == 200
    text = _text(html)
    assert "GET /search" in text and "POST /checkout" in text  # requests per route
    assert re.search(r"POST /checkout \S* ?\d+ [\d.]+/s [\d.]+%", text)  # count, rate, errors
    assert "Declined: card declined" in text and f"/errors/{GROUP}" in html
    assert "regressed" in text  # one event of the group came back after a resolve
    for check in ("database", "payments", "overall"):
        assert f'<th scope="row">{check}</th>' in html
    assert "HighErrorRate" in text and "firing" in text and "resolved" in text
    assert "queue.depth" in text and 'class="anomaly"' in html and 'class="band"' in html


def test_overview_error_group_counts_users_and_sparkline(served: str) -> None:
    _, html = get(served, "/?range=15m")
    row = html[html.index("Declined: card declined") :].split("</tr>")[0]
    cells = _text(row)
    assert "5 5 total 3" in cells  # 5 events in the window, 5 in all, 3 distinct users
    assert 'class="spark"' in row


def test_group_page_shows_crash_site_in_app_frames_first_and_breadcrumbs(served: str) -> None:
    status, html = get(served, f"/errors/{GROUP}?range=15m")
    assert status == 200
    crash = html[html.index('class="crash"') :]
    assert "shop/pay.py:12 in pay" in crash.split("</div>")[0]  # the innermost in-app frame
    frames = html[html.index('class="frames"') :]
    # crash site first; the library frame is folded away under the in-app ones
    assert (
        frames.index("pay</span>") < frames.index("checkout</span>") < frames.index("post</span>")
    )
    assert "1 library frames" in frames
    crumbs = _text(html[html.index('class="breadcrumbs"') :].split("</ol>")[0])
    assert "-50 ms http POST /checkout" in crumbs and "retrying the payment provider" in crumbs
    assert "eu-west" in html and "u-1" in html  # tags and user of the newest event
    facts = _text(html[html.index('class="facts"') :].split("</div></div>")[0])
    assert "STATUS" in facts.upper() and "unresolved" in facts
    assert re.search(r"users 3\b", facts)  # u-0, u-1, u-2 across every event
    assert f"/traces/{TRACE}" in html  # the newest event carries the trace id


def test_group_page_picks_an_event_by_id(served: str) -> None:
    _, html = get(served, f"/errors/{GROUP}?event={0:032x}&range=15m")
    assert f"/traces/{TRACE}" not in html.split('id="event"')[1].split("</section>")[0]
    assert "u-0" in html


def test_unknown_group_and_trace_are_clear_404_pages(served: str) -> None:
    for path, words in (
        ("/errors/nosuchgroup", "No error group"),
        ("/traces/" + "e" * 32, "No spans"),
    ):
        status, html = get(served, path)
        assert status == 404 and words in html and "Traceback" not in html


def test_trace_page_waterfall_and_logs_in_order(served: str) -> None:
    status, html = get(served, f"/traces/{TRACE}")
    assert status == 200
    waterfall = html[html.index('class="waterfall"') :]
    assert (
        waterfall.index("POST /checkout") < waterfall.index("load_cart") < waterfall.index("charge")
    )
    assert 'class="name depth-1">load_cart' in waterfall
    logs = _text(html[html.index('class="logs"') :])
    assert logs.index("checkout started") < logs.index("payment declined")
    assert f"/errors/{GROUP}" in html  # the error raised in this trace


def test_logs_filters(served: str) -> None:
    def events(query: str) -> list[str]:
        _, html = get(served, "/logs?range=15m&" + query)
        return re.findall(r'<td class="msg">([^<]*?) <', html)

    assert events("level=warning") == ["payment declined", "inventory sync failed"]
    assert events("logger=shop.pay") == ["payment declined"]
    assert events(f"request_id={REQUEST}") == ["payment declined", "checkout started"]
    assert events(f"trace_id={TRACE}") == ["payment declined", "checkout started"]
    assert events("q=SYNC") == ["inventory sync failed"]


def test_log_text_is_escaped(served: str) -> None:
    _, html = get(served, "/logs?range=15m")
    assert "cache warmed &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html


def test_live_tail_returns_records_after_the_cursor(served: str, store_path) -> None:
    from obskit.exporters import SQLiteExporter
    from obskit.signals import LogRecord

    from .conftest import NOW

    _, html = get(served, "/logs?range=15m")
    cursor = re.search(r'data-cursor="(\d+)"', html).group(1)  # type: ignore[union-attr]
    _, empty = get(served, f"/logs/tail?after={cursor}")
    assert json.loads(empty)["count"] == 0
    writer = SQLiteExporter(store_path, clock=lambda: NOW)
    writer.export(
        [LogRecord(NOW, "info", "fresh one", "shop"), LogRecord(NOW, "error", "fresh two", "shop")]
    )
    writer.shutdown()
    answer = json.loads(get(served, f"/logs/tail?after={cursor}&level=error")[1])
    assert answer["count"] == 1 and "fresh two" in answer["html"]
    assert int(answer["cursor"]) == int(cursor) + 2


def test_metrics_explorer_splits_by_label(served: str) -> None:
    _, html = get(served, "/explore?range=15m&metric=queue.depth&by=queue&agg=max")
    text = _text(html)
    assert "queue=mail" in text and "queue=sms" in text
    assert re.search(r"queue=mail 5 14", text)  # lowest and highest per-slot max
    _, only = get(served, "/explore?range=15m&metric=queue.depth&where=queue%3Dsms")
    assert "1 series" in _text(only)


def test_range_picker_and_end_parameter(served: str) -> None:
    _, html = get(served, "/?range=7d")
    assert 'aria-current="true">7d<' in html
    _, old = get(served, "/?range=15m&end=1000")
    assert "Nothing happened in the last 15m" in _text(old)


def test_every_page_has_no_inline_script_or_style_and_a_strict_policy(dashboard) -> None:
    from obskit.dashboard._app import Request

    for path in ("/", "/logs", "/explore", f"/errors/{GROUP}", f"/traces/{TRACE}"):
        response = dashboard.handle(Request("GET", path, {"range": "15m"}))
        html = response.body.decode()
        assert response.status == 200, path
        assert "<script>" not in html and " style=" not in html and "<style" not in html
        assert "script-src 'self'" in dict(response.all_headers())["Content-Security-Policy"]


def test_a_group_seen_again_after_resolve_is_marked_regressed(tmp_path) -> None:
    from obskit import store
    from obskit.dashboard import Dashboard
    from obskit.dashboard._app import Request
    from obskit.exporters import SQLiteExporter
    from obskit.signals import ErrorEvent

    from .conftest import NOW

    path = tmp_path / "regress.db"
    writer = SQLiteExporter(path, clock=lambda: NOW)

    def event(n: int, ts: float) -> ErrorEvent:
        return ErrorEvent(f"{n:032x}", ts, "error", "ab" * 16, "OSError: disk gone", service="s")

    writer.export([event(1, NOW - 500)])
    dashboard = Dashboard(path, clock=lambda: NOW)

    def row() -> str:
        html = dashboard.handle(Request("GET", "/", {"range": "15m"})).body.decode()
        return html[html.index("OSError: disk gone") :].split("</tr>")[0]

    assert "regressed" not in row()
    with store.open(path) as db:
        assert db.resolve("ab" * 16, now=NOW - 400) == "ab" * 16
    writer.export([event(2, NOW - 300)])
    writer.shutdown()
    assert "regressed" in row()


def test_explorer_rates_are_per_second_whatever_the_slot(served: str) -> None:
    # GET /search: 20 requests a minute in the store's per-minute rollups
    for name in ("15m", "1h"):
        _, html = get(
            served,
            f"/explore?range={name}&metric=http.server.request.duration&by=http.route&agg=rate",
        )
        assert re.search(r"http.route=/search 0.333 0.333", _text(html)), name
    _, default = get(served, "/explore?range=15m")
    assert '<option value="http.server.request.duration" selected>' in default
