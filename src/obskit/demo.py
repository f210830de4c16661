"""``obskit demo``: a small simulated shop service, instrumented, run for a few seconds.

Requests hit a few handlers; some are slow, some fail. At the end the demo prints what obskit
saw: log records by level, captured errors, request latency percentiles, pipeline statistics.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import obskit
from obskit.exporters import InMemoryExporter, JsonLinesExporter, SQLiteExporter
from obskit.levels import LEVELS

__all__ = ["run_demo"]

log = obskit.get_logger("shop")


class PaymentDeclined(Exception):
    """The simulated payment provider said no."""


@obskit.instrument
def load_cart(rng: random.Random, user: str) -> int:
    time.sleep(rng.uniform(0.0005, 0.002))
    return rng.randint(1, 5)


@obskit.instrument
def charge(rng: random.Random, amount: float) -> str:
    if rng.random() < 0.08:
        raise PaymentDeclined(f"card declined for amount {amount:.2f}")
    if rng.random() < 0.05:
        time.sleep(0.03)  # a slow provider
    return f"ch_{rng.randrange(10**8):08d}"


def handle_checkout(rng: random.Random, user: str) -> None:
    with obskit.request("POST /checkout", method="POST", route="/checkout", user_id=user) as req:
        items = load_cart(rng, user)
        log.info("checkout started", cart_items=items)
        try:
            charge_id = charge(rng, items * 19.99)
        except PaymentDeclined:
            req.set_status(402)
            log.warning("payment declined", cart_items=items)
            return
        log.business("order placed", charge_id=charge_id, amount=round(items * 19.99, 2))
        req.set_status(201)


def handle_search(rng: random.Random, user: str) -> None:
    with obskit.request("GET /search", method="GET", route="/search", user_id=user) as req:
        if rng.random() < 0.04:
            req.set_status(500)
            raise KeyError("search index shard 3 is missing")
        log.debug("search served", results=rng.randint(0, 40))
        req.set_status(200)


HANDLERS = [(handle_checkout, 0.4), (handle_search, 0.6)]


def run_demo(
    *, seconds: float = 4.0, rps: float = 60.0, seed: int = 7, out_dir: str | None = None
) -> int:
    """Run the simulated service; print a summary. Returns the process exit status."""
    rng = random.Random(seed)
    directory = Path(out_dir or tempfile.mkdtemp(prefix="obskit-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    memory = InMemoryExporter()
    jsonl_path = directory / "demo.jsonl"
    db_path = directory / "demo.db"  # the embedded store: `obskit report --db <this>`
    obskit.init(
        service="demo-shop",
        environment="demo",
        release="0.1.0",
        level="debug",
        exporters=[memory, JsonLinesExporter(jsonl_path), SQLiteExporter(db_path)],
    )
    alerting = _start_alerting()
    anomalies = _AnomalyWatch()
    print(f"obskit demo: simulating 'demo-shop' for {seconds:.0f}s at ~{rps:.0f} req/s", flush=True)
    handled = failures = 0
    start_wall = time.time()
    start = time.monotonic()
    bar = _ProgressBar(seconds)
    while (elapsed := time.monotonic() - start) < seconds:
        handler = rng.choices([h for h, _ in HANDLERS], [w for _, w in HANDLERS])[0]
        try:
            handler(rng, f"u-{rng.randint(1, 50)}")
        except Exception:
            failures += 1
        handled += 1
        bar.update(elapsed, handled, failures)
        time.sleep(max(0.0, handled / rps - (time.monotonic() - start)))
    bar.finish(handled, failures)
    alerting.finish()
    obskit.flush(timeout_s=10)
    _print_summary(memory, handled, failures, jsonl_path)
    alerting.report(sys.stdout)
    anomalies.report(sys.stdout, start_wall)
    _print_health(directory, seed)
    obskit.shutdown()
    return 0


def _start_alerting() -> Any:
    """An error-rate alert rule, evaluated as the demo runs, notifying a local webhook."""
    from obskit.alerts._demo import DemoAlerting

    return DemoAlerting()


class _AnomalyWatch:
    """Request latency per route through a streaming detector (robust median/MAD)."""

    def __init__(self) -> None:
        from obskit import anomaly

        self.found: list[Any] = []
        # latencies live in 0-0.1 s here: the hint sets a resolution floor, so sub-0.1 ms
        # jitter of a fast route is not an anomaly
        detector = anomaly.MedianMAD(window=60, warmup=20, cooldown=10, value_range=(0, 0.1))
        self.watch = anomaly.watch(
            "obskit.request.duration", detector, on_anomaly=self.found.append
        )

    def report(self, out: Any, start: float) -> None:
        self.watch.stop()
        out.write(
            f"\nAnomalies (MedianMAD on obskit.request.duration per route): {len(self.found)}\n"
        )
        for found in self.found[:6]:
            low, high = max(0.0, found.lower or 0) * 1000, (found.upper or 0) * 1000
            out.write(
                f"  + {found.timestamp - start:5.2f}s  {found.labels.get('name', '?'):<16}"
                f"{found.value * 1000:7.2f} ms  (expected {low:.2f}-{high:.2f} ms, "
                f"score {found.score:.2f})\n"
            )


class _ProgressBar:
    """A one-line progress bar on stderr (a line per second when stderr is not a terminal)."""

    def __init__(self, seconds: float, width: int = 30) -> None:
        self.seconds = seconds
        self.width = width
        self.tty = sys.stderr.isatty()
        self.last_second = -1

    def update(self, elapsed: float, handled: int, failures: int) -> None:
        fraction = min(1.0, elapsed / self.seconds)
        if self.tty:
            filled = int(fraction * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            sys.stderr.write(f"\r  [{bar}] {fraction:4.0%}  {handled} requests, {failures} failed")
            sys.stderr.flush()
        elif int(elapsed) != self.last_second:
            self.last_second = int(elapsed)
            sys.stderr.write(f"  {fraction:4.0%}  {handled} requests, {failures} failed\n")

    def finish(self, handled: int, failures: int) -> None:
        self.update(self.seconds, handled, failures)
        if self.tty:
            sys.stderr.write("\n")


def _print_summary(memory: InMemoryExporter, handled: int, failures: int, jsonl_path: Path) -> None:
    records = memory.records
    levels = Counter(r.level for r in records if r.kind == "log")
    durations = obskit.metrics.snapshot().get("obskit.request.duration")
    routes = sorted({s.labels["name"] for s in durations.series}) if durations else []
    out = sys.stdout
    out.write(f"\nHandled {handled} requests, {failures} raised.\n\nLog records by level:\n")
    for level in LEVELS:
        out.write(f"  {level:<9}{levels.get(level, 0):>6}\n")
    out.write(
        "\nRequests (histogram obskit.request.duration; percentiles from its buckets):\n"
        "  route              count    p50 ms   p95 ms   errors\n"
    )
    query = obskit.metrics.query
    for route in routes:
        count = query("obskit.request.duration", "count", name=route) or 0
        ok = (
            sum(s.count for s in durations.series if s.labels == {"name": route})
            if durations
            else 0
        )
        p50 = (query("obskit.request.duration", "p50", name=route) or 0) * 1000
        p95 = (query("obskit.request.duration", "p95", name=route) or 0) * 1000
        out.write(f"  {route:<18}{count:>6.0f}  {p50:>8.2f} {p95:>8.2f}  {count - ok:>7.0f}\n")
    _print_errors(out, records)
    stats = obskit.pipeline_stats()["exporters"]
    out.write("\nPipeline:\n  exporter             accepted  exported  dropped  failed\n")
    for name, row in stats.items():
        counts = " ".join(
            f"{row[k]:>{w}}" for k, w in (("accepted", 9), ("exported", 9), ("dropped", 8))
        )
        out.write(f"  {name:<20}{counts} {row['failed']:>7}\n")
    out.write(f"\nEvery signal is also in {jsonl_path}\n")
    db_path = jsonl_path.with_name("demo.db")
    out.write(
        f"and in the SQLite store {db_path}: try `obskit report --db {db_path}` for a summary,\n"
        f"or `obskit dashboard --db {db_path}` to browse it (http://127.0.0.1:8050)\n"
    )


def _print_errors(out: Any, records: list[Any]) -> None:
    events = sum(1 for r in records if r.kind == "error")
    groups = sorted(obskit.errors.groups(), key=lambda group: -group.count)
    out.write(f"\nErrors captured: {events} events in {len(groups)} groups\n")
    for group in groups[:5]:
        out.write(
            f"  {group.count:>5} x {group.title}  [{group.fingerprint[:12]}]  "
            f"{group.users} users, at {group.culprit}\n"
        )


def _print_health(directory: Path, seed: int, runs: int = 8) -> None:
    """Health checks of the shop, one dependency flaky; run a few times, print the report."""
    import sqlite3

    from obskit.health import CheckResult, HealthRegistry, checks

    flaky = random.Random(seed)

    def payments_api() -> CheckResult:
        if flaky.random() < 0.45:
            return CheckResult.fail("connection reset by peer")
        return CheckResult.ok(observed_value=round(flaky.uniform(20, 80), 1), observed_unit="ms")

    sqlite3.connect(directory / "shop.db").close()
    registry = HealthRegistry(name="demo", cache_ttl_s=0)
    registry.register("database", checks.SqlitePing(directory / "shop.db"), tags=["ready"])
    registry.register("disk", checks.DiskFree(directory, fail_below=10 << 20))
    registry.register("memory", checks.ProcessMemory(warn_above=2 << 30))
    registry.register("payments-api", payments_api, critical=False, failure_threshold=2)
    with registry:
        for _ in range(runs):
            report = registry.run()
        history = registry.history("payments-api")
    raw = " ".join(f"{r.raw_status}" for r in history)
    shown = " ".join(f"{r.status}" for r in history)
    out = sys.stdout
    out.write(f"\nHealth ({runs} runs; payments-api is flaky, failure_threshold=2):\n")
    out.write(f"  payments-api answered  {raw}\n  payments-api reported  {shown}\n\n")
    out.write(obskit.health.format_report(report.to_dict(), report.http_status) + "\n")
