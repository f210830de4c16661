"""What a collector outage costs the application's log calls, beside a healthy run.

The app logs N records at a steady rate through obskit's OTLP exporter (gRPC, then
HTTP/protobuf). In the outage run the receiver process is stopped a third of the way in and
started again on the same ports two thirds of the way in; the healthy run keeps it up. Both runs
alternate, so each pair sees the same machine. The exporter retries on its own thread and the
queue holds the outage, so a log call should cost the same either way.

Columns: log-call latency (p50, p99; median over the repeats) and the p99 ratio to the healthy
run of the same protocol. The test suite checks the behaviour (nothing lost, nothing sent twice,
no export on the app's thread: tests/exporters/test_otlp_faults.py); this measures the cost.

    python benchmarks/bench_outage.py [--records 20000] [--rate 4000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import print_table
from bench_exporters import receive, wait_until

import obskit
from obskit.exporters import OTLPExporter


class ReceiverProcess:
    """The benchmark's OTLP receiver in its own process, stopped and restarted on its ports."""

    def __init__(self) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.counts = {"grpc": self.context.Value("q", 0), "http": self.context.Value("q", 0)}
        self.ports = (0, 0)
        self.process: Any = None

    def start(self) -> None:
        ready = self.context.Queue()
        counts = (self.counts["grpc"], self.counts["http"])
        self.process = self.context.Process(
            target=receive, args=(ready, *counts, self.ports), daemon=True
        )
        self.process.start()
        self.ports = ready.get(timeout=60)

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(30)


def run(receiver: ReceiverProcess, protocol: str, args: Any, *, outage: bool) -> list[int]:
    """One paced run; returns each log call's latency in nanoseconds."""
    key, port = ("grpc", receiver.ports[0]) if protocol == "grpc" else ("http", receiver.ports[1])
    target = receiver.counts[key].value + args.records
    obskit.init(
        exporters=[OTLPExporter(f"http://127.0.0.1:{port}", protocol=protocol, timeout_s=2)],
        max_queue_size=args.records + 10_000,  # holds the whole outage
        schedule_delay_s=0.1,
        install_hooks=False,
    )
    log = obskit.get_logger("load")
    for _ in range(1000):  # first calls pay one-time costs
        log.info("warm-up")
    seconds = args.records / args.rate
    timers = [
        threading.Timer(seconds / 3, receiver.stop),
        threading.Timer(2 * seconds / 3, receiver.start),
    ]
    if outage:
        for timer in timers:
            timer.start()
    latencies = [0] * args.records
    clock = time.perf_counter_ns
    start = time.perf_counter()
    for n in range(args.records):
        if n % 100 == 0:
            time.sleep(max(0.0, start + n / args.rate - time.perf_counter()))
        before = clock()
        log.info("order event", n=n, order_id=f"o-{n}", amount=n * 0.01)
        latencies[n] = clock() - before
    if outage:
        for timer in timers:
            timer.join()
    if not obskit.flush(timeout_s=120):
        raise RuntimeError(f"{protocol}: the exporter did not flush")
    wait_until(receiver.counts[key], target)
    obskit.shutdown()
    return latencies


def quantile_us(latencies: list[int], q: float) -> float:
    ordered = sorted(latencies)
    return ordered[int(q * (len(ordered) - 1))] / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=4_000, help="log calls per second")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    receiver = ReceiverProcess()
    receiver.start()
    rows = []
    try:
        for protocol in ("grpc", "http/protobuf"):
            figures: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
            for _ in range(args.repeat):
                for outage in (False, True):
                    latencies = run(receiver, protocol, args, outage=outage)
                    figures[outage].append(
                        (quantile_us(latencies, 0.5), quantile_us(latencies, 0.99))
                    )
            healthy_p99 = statistics.median(p99 for _, p99 in figures[False])
            for outage in (False, True):
                p50 = statistics.median(p50 for p50, _ in figures[outage])
                p99 = statistics.median(p99 for _, p99 in figures[outage])
                run_name = "collector down for a third" if outage else "healthy"
                rows.append([protocol, run_name, p50, p99, f"{p99 / healthy_p99:.2f}x"])
    finally:
        receiver.stop()
    print_table(
        f"Log-call latency through a collector outage: {args.records} records at "
        f"{args.rate}/s, median of {args.repeat} (Python {sys.version.split()[0]}, "
        f"obskit {obskit.__version__})",
        ["protocol", "run", "p50 us", "p99 us", "p99 vs healthy"],
        rows,
    )


if __name__ == "__main__":
    main()
