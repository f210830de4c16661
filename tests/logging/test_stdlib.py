"""The stdlib logging bridge: library records flow into the same pipeline with context."""

from __future__ import annotations

import logging

import obskit
from obskit.exporters import InMemoryExporter


def test_stdlib_records_carry_context_and_extra_fields() -> None:
    memory = InMemoryExporter()
    obskit.init(exporters=[memory], capture_stdlib_logging=True, level="debug")
    library = logging.getLogger("some.library")
    with obskit.context(request_id="r-7"):
        library.info("connected to %s", "db1", extra={"pool": 4})
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            library.exception("query failed")
    obskit.flush()
    connected, failed = [r for r in memory.logs if r.logger == "some.library"]
    assert connected.event == "connected to db1"
    assert connected.fields["request_id"] == "r-7" and connected.fields["pool"] == 4
    assert failed.level == "error" and "ZeroDivisionError" in failed.exception


def test_bridge_is_removed_on_reinit_without_it() -> None:
    memory = InMemoryExporter()
    obskit.init(exporters=[memory], capture_stdlib_logging=True)
    obskit.init(exporters=[memory])
    logging.getLogger("quiet").warning("not bridged")
    obskit.flush()
    assert not [r for r in memory.logs if r.logger == "quiet"]
