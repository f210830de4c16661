"""OTLP at the edges of a process's life: exit without shutdown, and a partial outage."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from otlp_receiver import HttpReceiver, Receiver

import obskit
from obskit import _runtime
from obskit.exporters import OTLPExporter
from obskit.signals import SpanRecord


def test_a_script_exiting_without_shutdown_delivers_100_of_100(receiver: Receiver) -> None:
    script = """
        import sys
        import obskit
        from obskit.exporters import OTLPExporter
        exporter = OTLPExporter(sys.argv[1], protocol=sys.argv[2])
        obskit.init(exporters=[exporter], install_hooks=False)
        log = obskit.get_logger("exit")
        for n in range(100):
            log.info("line", n=n)
        # no obskit.shutdown(): interpreter exit flushes
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), receiver.endpoint, receiver.protocol],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "lost" not in result.stderr, result.stderr
    assert receiver.received.wait_for(lambda r: len(r.logs) >= 100, timeout_s=10)
    assert len(receiver.received.logs) == 100


def test_a_partial_outage_with_a_spool_sends_each_record_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logs endpoint up, traces endpoint down for a while: nothing is sent twice."""
    logs, traces = HttpReceiver(), HttpReceiver()
    logs.start()
    traces.start()
    traces_port = traces.port
    traces.stop()  # down; restarted on the same port below
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", f"{logs.endpoint}/v1/logs")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{traces.endpoint}/v1/traces")
    try:
        exporter = OTLPExporter(export_spans=True)
        obskit.init(
            exporters=[exporter],
            spool_dir=str(tmp_path / "spool"),
            schedule_delay_s=0.05,
            install_hooks=False,
        )
        log = obskit.get_logger("outage")
        for n in range(50):
            log.info("line", n=n)
            span_id = f"{n + 1:016x}"
            _runtime.emit(SpanRecord(time.time(), f"op{n}", "ab" * 16, span_id, None, 1.0))
            time.sleep(0.02)
        # the logs do not wait behind the refused spans (several retries of those meanwhile)
        assert logs.received.wait_for(lambda r: len(r.logs) >= 50, timeout_s=20)
        traces.port = traces_port
        traces.start()
        assert obskit.flush(timeout_s=30)
        assert traces.received.wait_for(lambda r: len(r.spans) >= 50, timeout_s=20)
        assert logs.received.wait_for(lambda r: len(r.logs) >= 50, timeout_s=20)
        time.sleep(0.5)  # room for a duplicate to arrive, if one were sent
    finally:
        obskit.shutdown(timeout_s=5)
        logs.stop()
        traces.stop()
    events = Counter(
        record.attributes[0].value.int_value if record.attributes else None
        for record in logs.received.log_records()
    )
    assert len(logs.received.logs) == 50 and len(events) == 50  # each log line once
    names = Counter(span.name for _, _, span in traces.received.spans)
    assert len(traces.received.spans) == 50 and set(names.values()) == {1}
