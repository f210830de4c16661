"""The collector goes away mid-stream: nothing is lost, nothing is sent twice, the app never waits.

Both fault tests use real receivers on loopback and real processes where the issue asks for
them. They assert behaviour, not speed: how much an outage costs a log call is measured in
``benchmarks/bench_outage.py`` (healthy and faulty runs alternated).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from otlp_receiver import Receiver, attributes_of, make_receiver

import obskit
from obskit.exporters import OTLPExporter
from obskit.exporting import ExportResult
from obskit.signals import Signal

PART = 2_000  # records logged before, during and after the outage


def numbers_received(receiver: Receiver) -> collections.Counter[int]:
    records = receiver.received.log_records()
    return collections.Counter(n for r in records if (n := attributes_of(r).get("n")) is not None)


class WatchedOTLPExporter(OTLPExporter):
    """Remembers which threads ran an export: the application's thread must never be one."""

    exporting_threads: set[int]

    def export(self, batch: Sequence[Signal]) -> ExportResult:
        self.exporting_threads.add(threading.get_ident())
        return super().export(batch)


def wait_until(condition: Callable[[], bool], timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_collector_down_mid_stream_loses_nothing_duplicates_nothing_and_never_blocks_the_app(
    protocol: str,
) -> None:
    """6,000 records, the receiver stopped for the middle 2,000: the app logs all of them while
    the collector is down (no call waits for it: every export runs on the exporter's thread),
    and once it is back every record arrives exactly once.
    """
    receiver = make_receiver(protocol)
    receiver.start()
    exporter = WatchedOTLPExporter(receiver.endpoint, protocol=protocol, timeout_s=2)
    exporter.exporting_threads = set()
    obskit.init(exporters=[exporter], max_queue_size=4 * PART, schedule_delay_s=0.1)
    log = obskit.get_logger("load")

    def log_part(part: int) -> None:
        for n in range(part * PART, (part + 1) * PART):
            log.info("order event", n=n, order_id=f"o-{n}", amount=n * 0.01)

    def stats() -> dict[str, int]:
        return obskit.pipeline_stats()["exporters"]["WatchedOTLPExporter"]

    try:
        log_part(0)
        # acknowledged, not only received: a batch cut off by the stop would be retried, and
        # OTLP delivers at least once, so it could then arrive twice
        assert obskit.flush(timeout_s=60)
        receiver.stop()
        log_part(1)  # returns while the collector is down: nothing here waits for it
        assert wait_until(lambda: stats()["retried"] > 0), "the exporter met the outage"
        receiver.start()
        log_part(2)
        assert obskit.flush(timeout_s=60)
        assert receiver.received.wait_for(lambda r: len(r.logs) >= 3 * PART, timeout_s=60)
        final = stats()
    finally:
        obskit.shutdown()
        receiver.stop()
    counts = numbers_received(receiver)
    assert sorted(counts) == list(range(3 * PART)), "every record arrives"
    assert max(counts.values()) == 1, "no record arrives twice"
    assert final["dropped"] == final["failed"] == 0
    assert exporter.exporting_threads and threading.get_ident() not in exporter.exporting_threads


SPOOLING_APP = """
import sys, time
import obskit
from obskit.exporters import OTLPExporter
endpoint, protocol, spool, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
obskit.init(exporters=[OTLPExporter(endpoint, protocol=protocol, timeout_s=1)], spool_dir=spool)
log = obskit.get_logger("spooled")
for n in range(count):
    log.info("before the crash", n=n)
while obskit.pipeline_stats()["exporters"]["OTLPExporter"]["spooled"] < count:
    time.sleep(0.01)
print("spooled", flush=True)
time.sleep(600)  # killed here, in the middle of the outage
"""

RESTARTED_APP = """
import sys
import obskit
from obskit.exporters import OTLPExporter
endpoint, protocol, spool = sys.argv[1], sys.argv[2], sys.argv[3]
obskit.init(exporters=[OTLPExporter(endpoint, protocol=protocol)], spool_dir=spool)
sys.exit(0 if obskit.flush(timeout_s=60) else 1)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_process_killed_during_the_outage_delivers_its_spool_after_restart(
    tmp_path: Path,
) -> None:
    receiver = make_receiver("grpc")
    receiver.start()
    receiver.stop()  # the collector is down from the start
    count = 3000
    args = [receiver.endpoint, "grpc", str(tmp_path / "spool")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    crashing = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SPOOLING_APP), *args, str(count)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert crashing.stdout is not None
    assert crashing.stdout.readline().strip() == "spooled"
    crashing.send_signal(signal.SIGKILL)  # no atexit, no flush: only the disk survives
    crashing.wait(timeout=30)

    receiver.start()
    try:
        restarted = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(RESTARTED_APP), *args], timeout=120, env=env
        )
        assert restarted.returncode == 0
        assert receiver.received.wait_for(lambda r: len(r.logs) >= count)
        counts = numbers_received(receiver)
    finally:
        receiver.stop()
    assert sorted(counts) == list(range(count)) and max(counts.values()) == 1
    assert not list((tmp_path / "spool" / "OTLPExporter").glob("*.seg"))
