"""The dashboard in a real headless Chromium, over the store `obskit demo --out DIR` writes.

Each page is loaded once by Chromium with its console sent to stderr (``--enable-logging``):
the test reads the DOM after the scripts ran (``--dump-dom``), any console message (a script
error, a Content-Security-Policy violation, a failed fetch) fails it, and the same run saves a
screenshot. Screenshots go to ``$OBSKIT_SCREENSHOT_DIR`` or a temporary directory (printed).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from obskit.dashboard import DashboardServer

CHROMIUM = next(
    (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs headless Chromium: Debian package 'chromium' (.ci/run installs it)",
)

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
]  # fmt: skip


def browse(url: str, screenshot: Path, *, size: str = "1360,1500") -> tuple[str, list[str]]:
    """Load ``url``; return the DOM after its scripts ran and every console message."""
    with tempfile.TemporaryDirectory(prefix="obskit-chromium-") as profile:
        run = subprocess.run(
            [CHROMIUM or "chromium", *FLAGS, f"--user-data-dir={profile}",
             f"--window-size={size}", "--virtual-time-budget=3000",
             f"--screenshot={screenshot}", "--dump-dom", url],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout, console


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    subprocess.run(
        [sys.executable, "-m", "obskit.cli", "demo", "--out", str(out), "--seconds", "4"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return out / "demo.db"


@pytest.fixture(scope="module")
def base(demo_store: Path) -> Iterator[str]:
    with DashboardServer(demo_store, port=0) as server:
        yield server.url.rstrip("/")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("OBSKIT_SCREENSHOT_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\ndashboard screenshots: {folder}")
    return folder


def _text(dom: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def _looked_at(dom: str, console: list[str], shot: Path) -> str:
    assert console == [], console  # no script error, CSP violation or failed request
    assert shot.stat().st_size > 10_000  # a real picture, not a blank page
    return _text(dom)


def test_overview_shows_the_demo(base: str, shots: Path) -> None:
    dom, console = browse(f"{base}/?range=15m", shots / "overview.png", size="1360,2300")
    text = _looked_at(dom, console, shots / "overview.png")
    # the demo's error groups
    assert "PaymentDeclined" in text and "KeyError" in text
    # its health checks, with the flaky one
    for check in ("database", "disk", "memory", "payments-api"):
        assert f'<th scope="row">{check}</th>' in dom
    # the alert that fired and resolved
    alerts = _text(dom[dom.index('class="alerts"') :].split("</table>")[0])
    assert "high_error_rate" in alerts and "firing" in alerts and "resolved" in alerts
    # route latencies: count, rate, error ratio, p50, p95, p99 of both routes
    routes = _text(dom[dom.index('class="routes"') :].split("</table>")[0])
    for route in ("GET /search", "POST /checkout"):
        assert re.search(re.escape(route) + r" \d+ [\d.]+/s [\d.]+% (\S+ (ms|µs|s) ){3}", routes)
    chart = dom[dom.index('aria-label="latency of') :].split("</svg>")[0]
    assert re.search(r'class="(line|dot) tone-0"', chart)  # the latency chart has its p50


def test_error_group_page_shows_breadcrumbs(base: str, shots: Path) -> None:
    overview, _ = browse(f"{base}/?range=15m", shots / "overview-again.png")
    link = re.search(r'href="(/errors/[0-9a-f]+[^"]*)"', overview)
    assert link is not None
    dom, console = browse(base + link.group(1).replace("&amp;", "&"), shots / "error-group.png",
                          size="1360,2000")  # fmt: skip
    text = _looked_at(dom, console, shots / "error-group.png")
    crumbs = dom[dom.index('class="breadcrumbs"') :].split("</ol>")[0]
    assert crumbs.count('class="crumb') >= 2 and "request" in _text(crumbs)
    assert 'class="crash"' in dom and "Events" in text
    trace = re.search(r'href="(/traces/[0-9a-f]{32}[^"]*)"', dom)
    assert trace is not None
    trace_dom, console = browse(base + trace.group(1).replace("&amp;", "&"), shots / "trace.png",
                                size="1360,900")  # fmt: skip
    trace_text = _looked_at(trace_dom, console, shots / "trace.png")
    assert 'class="waterfall"' in trace_dom and "charge" in trace_text


def test_logs_page_with_live_tail_on(base: str, shots: Path) -> None:
    dom, console = browse(f"{base}/logs?range=15m&level=warning#tail", shots / "logs.png")
    text = _looked_at(dom, console, shots / "logs.png")
    assert "payment declined" in text
    box = re.search(r'<div id="log-table"[^>]*>', dom)
    assert box is not None and 'data-live="on"' in box.group(0)
    polls = re.search(r'data-polls="(\d+)"', box.group(0))
    assert polls is not None and int(polls.group(1)) >= 1  # the tail endpoint answered


def test_metrics_explorer(base: str, shots: Path) -> None:
    dom, console = browse(f"{base}/explore?range=15m", shots / "metrics.png", size="1360,1000")
    text = _looked_at(dom, console, shots / "metrics.png")
    assert "Metrics" in text
