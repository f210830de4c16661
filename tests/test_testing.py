"""obskit.testing: users capture what their code emitted."""

from __future__ import annotations

import obskit
from obskit.testing import CapturedSignals, capture


def test_capture_flushes_on_read_and_shuts_down_after() -> None:
    with capture(service="t") as captured:
        obskit.get_logger("t").info("one")
        assert [r.event for r in captured.logs] == ["one"]
        captured.clear()
        assert captured.records == []
    assert captured.exporter.shut_down


def test_fixture_captures(obskit_capture: CapturedSignals) -> None:
    with obskit.request("job"):
        obskit.get_logger("t").warning("inside")
    assert obskit_capture.logs[0].fields["request_id"]
    assert [s.name for s in obskit_capture.spans] == ["job"]
