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


def test_logging_inside_a_health_check_on_obskit_threads_is_bridged() -> None:
    from obskit.health import HealthRegistry

    memory = InMemoryExporter()
    obskit.init(exporters=[memory], capture_stdlib_logging=True, install_hooks=False)
    registry = HealthRegistry(name="bridged", cache_ttl_s=0)

    def database() -> bool:
        logging.getLogger("app.health").warning("replica lag high")
        return True

    registry.register("db", database, interval_s=0.05)
    registry.start()
    try:
        for _ in range(200):  # the check runs on the registry's own obskit-* thread
            obskit.flush()
            if [r for r in memory.logs if r.logger == "app.health"]:
                break
            import time

            time.sleep(0.02)
    finally:
        registry.close()
    assert [r.event for r in memory.logs if r.logger == "app.health"][:1] == ["replica lag high"]


def test_logging_from_an_exporter_thread_does_not_loop_back() -> None:
    from collections.abc import Sequence

    from obskit.exporting import ExportResult

    class Chatty(InMemoryExporter):
        def export(self, batch: Sequence[object]) -> ExportResult:
            logging.getLogger("chatty.client").warning("sent %d", len(batch))
            return super().export(batch)  # type: ignore[arg-type]

    chatty = Chatty()
    obskit.init(exporters=[chatty], capture_stdlib_logging=True, install_hooks=False)
    obskit.get_logger("app").info("one")
    obskit.flush()
    obskit.flush()
    assert [r.event for r in chatty.logs] == ["one"]
