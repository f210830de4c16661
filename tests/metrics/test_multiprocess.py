"""Several worker processes, one scrape: gunicorn with 4 sync workers, each with its own store."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from obskit.metrics import multiprocess
from obskit.metrics.instruments import Exemplar, MetricData, SeriesData

from ..alerts.promstack import free_port, wait_for

APP = """
import os
import time
import obskit
from obskit import metrics
from obskit.integrations.wsgi import ObskitWSGIMiddleware

obskit.init(service="shop", exporters=[], metrics_multiprocess_dir=os.environ["METRICS_DIR"])
orders = metrics.counter("orders", description="orders placed")
exposition = metrics.prometheus_app()


def shop(environ, start_response):
    orders.add(shop="eu")
    time.sleep(0.02)  # busy for a moment: concurrent requests need several workers
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]


traced = ObskitWSGIMiddleware(shop)


def app(environ, start_response):
    if environ["PATH_INFO"] == "/metrics":
        return exposition(environ, start_response)
    return traced(environ, start_response)
"""


DURATION_COUNT = "http_server_request_duration_seconds_count"


def sample(text: str, name: str) -> float:
    return sum(float(m) for m in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


@pytest.mark.skipif(sys.platform == "win32", reason="gunicorn runs on POSIX")
def test_gunicorn_with_four_sync_workers_one_scrape_counts_every_request(tmp_path: Path) -> None:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        pytest.skip("needs gunicorn (the dev extra installs it)")
    (tmp_path / "shop_app.py").write_text(textwrap.dedent(APP))
    directory = tmp_path / "metrics"
    port = free_port()
    env = {**os.environ, "METRICS_DIR": str(directory), "PYTHONPATH": str(tmp_path)}
    server = subprocess.Popen(
        [str(gunicorn), "--workers", "4", "--worker-class", "sync", "--timeout", "300", "--bind",
         f"127.0.0.1:{port}", "--log-level", "warning", "shop_app:app"],
        cwd=tmp_path, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:

        def get(path: str) -> str:
            with urllib.request.urlopen(base + path, timeout=10) as response:
                return str(response.read().decode())

        def up() -> bool:
            try:
                get("/metrics")
                return True
            except OSError:
                return False

        wait_for(up, 60, "gunicorn to answer")
        sent = 200
        # Concurrent clients: a sync worker serves one request at a time, so while one sleeps
        # the others must answer (sequential requests may all go to the same worker).
        with ThreadPoolExecutor(8) as clients:
            pids = set(clients.map(lambda _: get("/order"), range(sent)))

        def scraped() -> str | None:
            text = get("/metrics")  # any worker answers: each scrape is the whole service's
            # (a request's duration is recorded when its response is closed, which may be after
            # the client has read it: wait for both counts, never for one and assert the other)
            counts = (sample(text, "orders_total"), sample(text, DURATION_COUNT))
            return text if counts == (sent, sent) else None

        text = wait_for(scraped, 60, f"orders_total and {DURATION_COUNT} == {sent}", 0.2)
        assert sample(text, DURATION_COUNT) == sent
        assert sample(text, "orders_total") == sent
        reporting = set(re.findall(r'process_uptime_seconds{process_pid="(\d+)"}', text))
        assert len(pids) > 1 and len(reporting) > 1  # several workers served, one scrape shows them
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
    assert len(list(directory.glob("obskit-*.json"))) >= 4


def _data(kind: str, value: float, **extra: object) -> MetricData:
    series = SeriesData({"shop": "eu"}, value, 1.0, **extra)  # type: ignore[arg-type]
    bounds = (1.0,) if kind == "histogram" else ()
    return MetricData(f"m.{kind}", kind, "", "", bounds, [series])


def test_merge_adds_sums_and_histograms_and_keeps_gauges_per_live_process() -> None:
    exemplar = Exemplar(0.5, 10.0, "ab" * 16, "cd" * 8)
    own = [_data("counter", 2), _data("histogram", 1.5, count=2, bucket_counts=(1, 1),
                                      min=0.5, max=1.0, exemplars=(exemplar, None))]  # fmt: skip
    other = [_data("counter", 3), _data("histogram", 4.0, count=1, bucket_counts=(0, 1),
                                        min=4.0, max=4.0, exemplars=())]  # fmt: skip
    dead = [_data("counter", 10), _data("gauge", 99)]
    merged = {m.kind: m for m in multiprocess.merge(own, [(11, True, other), (12, False, dead)])}
    assert merged["counter"].series[0].value == 15  # an exited worker's counts stay
    histogram = merged["histogram"].series[0]
    assert (histogram.count, histogram.bucket_counts) == (3, (1, 2))
    assert (histogram.min, histogram.max, histogram.exemplars[0]) == (0.5, 4.0, exemplar)
    assert "gauge" not in merged  # only from an exited process: dropped


def test_gauges_of_live_processes_carry_their_pid() -> None:
    own = [_data("gauge", 1)]
    merged = multiprocess.merge(own, [(42, True, [_data("gauge", 2)])])
    pids = sorted(s.labels["process.pid"] for s in merged[0].series)
    assert pids == sorted([str(os.getpid()), "42"])


def test_a_snapshot_round_trips_through_the_directory(tmp_path: Path) -> None:
    from obskit import metrics

    metrics.counter("mp.jobs").add(4, queue="a")
    writer = multiprocess.SnapshotWriter(metrics.STORE, tmp_path)
    writer.write()
    raw = (tmp_path / f"obskit-{os.getpid()}.json").read_text()
    assert '"mp.jobs"' in raw
    assert multiprocess.read_snapshots(tmp_path) == []  # its own file is not read twice
