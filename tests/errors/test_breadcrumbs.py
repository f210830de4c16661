"""Breadcrumbs: a bounded trail per context, automatic from logs, calls and requests."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import obskit
from obskit import diagnostics
from obskit.errors.breadcrumbs import current_trail
from obskit.exporters import InMemoryExporter
from obskit.signals import ErrorEvent

from .conftest import FakeClock


def messages(event: ErrorEvent | None) -> list[str]:
    assert event is not None
    return [crumb["message"] for crumb in event.breadcrumbs]


def test_a_breadcrumb_is_attached_to_the_next_event(clock: FakeClock) -> None:
    obskit.add_breadcrumb("db", "SELECT cart", level="debug", data={"rows": 3})
    event = obskit.capture_exception(ValueError("x"))
    assert event is not None
    assert [dict(crumb) for crumb in event.breadcrumbs] == [
        {
            "timestamp": clock.now,
            "category": "db",
            "message": "SELECT cart",
            "level": "debug",
            "data": {"rows": 3},
        }
    ]


def test_the_trail_keeps_only_the_newest_max_breadcrumbs(memory: InMemoryExporter) -> None:
    obskit.init(exporters=[memory], max_breadcrumbs=5)
    for number in range(23):
        obskit.add_breadcrumb("step", f"step {number}")
    assert messages(obskit.capture_message("now")) == [f"step {n}" for n in range(18, 23)]
    assert len(current_trail(limit=1000)) <= 10  # memory stays bounded too


def test_max_breadcrumbs_zero_turns_breadcrumbs_off(memory: InMemoryExporter) -> None:
    obskit.init(exporters=[memory], max_breadcrumbs=0)
    obskit.add_breadcrumb("step", "ignored")
    assert messages(obskit.capture_message("now")) == []


def test_log_records_at_info_and_above_become_breadcrumbs(memory: InMemoryExporter) -> None:
    log = obskit.get_logger("shop")
    log.debug("too chatty")
    log.info("checkout started", cart_items=3, password="hunter2")
    log.warning("card declined")
    event = obskit.capture_message("now")
    assert messages(event) == ["checkout started", "card declined"]
    assert event is not None
    first = event.breadcrumbs[0]
    assert first["category"] == "shop" and first["level"] == "info"
    assert first["data"] == {"cart_items": 3, "password": "[Filtered]"}


def test_instrumented_calls_and_requests_leave_breadcrumbs(memory: InMemoryExporter) -> None:
    @obskit.instrument
    def load_cart() -> int:
        return 3

    @obskit.instrument
    def charge() -> None:
        raise RuntimeError("declined")

    with obskit.request("POST /checkout", method="POST"):
        load_cart()
        try:
            charge()
        except RuntimeError:
            pass
        event = obskit.capture_message("after the charge")
    assert event is not None
    crumbs = [(c["category"], c["message"].split(".")[-1], c["level"]) for c in event.breadcrumbs]
    assert crumbs == [
        ("request", "POST /checkout", "info"),
        ("function", "load_cart", "info"),
        ("function", "charge", "error"),
    ]
    assert event.breadcrumbs[0]["data"]["method"] == "POST"
    assert event.breadcrumbs[2]["data"]["error"] == "RuntimeError"


def test_the_failing_call_is_not_in_its_own_events_trail(memory: InMemoryExporter) -> None:
    @obskit.instrument
    def charge() -> None:
        raise RuntimeError("declined")

    obskit.add_breadcrumb("ui", "clicked pay")
    try:
        charge()
    except RuntimeError:
        pass
    obskit.flush()
    (event,) = memory.errors
    assert messages(event) == ["clicked pay"]


def test_a_request_keeps_its_breadcrumbs_to_itself(memory: InMemoryExporter) -> None:
    obskit.add_breadcrumb("boot", "started")
    with obskit.request("GET /a"):
        obskit.add_breadcrumb("a", "inside a")
        inside_a = obskit.capture_message("in a")
    with obskit.request("GET /b"):
        inside_b = obskit.capture_message("in b")
    assert messages(inside_a) == ["started", "GET /a", "inside a"]
    assert messages(inside_b) == ["started", "GET /b"]
    assert [c.message for c in current_trail()] == ["started"]


def test_before_breadcrumb_can_edit_or_drop(memory: InMemoryExporter) -> None:
    def before_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        if crumb["category"] == "noise":
            return None
        if "log_record" in hint:
            crumb["message"] = "log: " + crumb["message"]
        return crumb

    obskit.init(exporters=[memory], before_breadcrumb=before_breadcrumb)
    obskit.add_breadcrumb("noise", "dropped")
    obskit.add_breadcrumb("kept", "kept")
    obskit.get_logger("x").info("hello")
    assert messages(obskit.capture_message("now")) == ["kept", "log: hello"]


def test_a_broken_before_breadcrumb_keeps_the_breadcrumb_and_is_reported(
    memory: InMemoryExporter,
) -> None:
    def broken(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("hook bug")

    obskit.init(exporters=[memory], before_breadcrumb=broken)
    obskit.add_breadcrumb("kept", "kept")
    obskit.add_breadcrumb("kept", "again")
    assert messages(obskit.capture_message("now")) == ["kept", "again"]
    assert diagnostics.problem_counts()["before_breadcrumb"] == 2


def test_breadcrumbs_are_scrubbed_once_and_shared_between_events(
    memory: InMemoryExporter,
) -> None:
    obskit.add_breadcrumb("auth", "login with Bearer abcdefghijklmnop", data={"token": "t0k3n"})
    first, second = obskit.capture_message("one"), obskit.capture_message("two")
    assert first is not None and second is not None
    assert first.breadcrumbs[0] is second.breadcrumbs[0]
    assert first.breadcrumbs[0]["message"] == "login with Bearer [Filtered]"
    assert first.breadcrumbs[0]["data"] == {"token": "[Filtered]"}


def test_concurrent_tasks_and_threads_never_mix_trails(memory: InMemoryExporter) -> None:
    """200 asyncio tasks and 8 threads add breadcrumbs and capture: each sees only its own."""
    obskit.init(exporters=[memory], max_events_per_group_per_minute=None, level="debug")
    log = obskit.get_logger("worker")
    start = threading.Barrier(9)

    async def task(number: int) -> None:
        owner = f"task{number}"
        for step in range(4):
            obskit.add_breadcrumb("step", f"{owner}-{step}")
            await asyncio.sleep(0)
        log.info(f"{owner}-logged")
        await asyncio.sleep(0)
        obskit.capture_exception(ValueError(owner), owner=owner)

    async def all_tasks() -> None:
        await asyncio.gather(*(task(n) for n in range(200)))

    def worker(number: int) -> None:
        owner = f"thread{number}"
        start.wait()
        for round_number in range(5):
            with obskit.request(f"{owner}-job"):
                for step in range(4):
                    obskit.add_breadcrumb("step", f"{owner}-{round_number}-{step}")
                obskit.capture_exception(ValueError(owner), owner=owner)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    start.wait()
    asyncio.run(all_tasks())
    for thread in threads:
        thread.join()
    obskit.flush()
    events = memory.errors
    assert len(events) == 200 + 8 * 5
    for event in events:
        owner = event.context["owner"]
        trail = messages(event)
        assert trail and all(message.startswith(owner + "-") for message in trail), trail
        if owner.startswith("task"):
            assert trail == [f"{owner}-{n}" for n in range(4)] + [f"{owner}-logged"]
        else:
            assert len(trail) == 5  # the request, then this round's four steps


def test_hooks_that_log_or_capture_do_not_recurse(memory: InMemoryExporter) -> None:
    log = obskit.get_logger("hooks")

    def chatty_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        log.info("saw a breadcrumb")  # would add a breadcrumb, which calls this hook, ...
        return crumb

    def chatty_send(event: ErrorEvent, hint: dict[str, Any]) -> ErrorEvent:
        obskit.capture_message("before_send ran")  # would call before_send again, ...
        return event

    obskit.init(exporters=[memory], before_breadcrumb=chatty_breadcrumb, before_send=chatty_send)
    obskit.add_breadcrumb("ui", "click")
    event = obskit.capture_message("outer")
    assert messages(event) == ["click"]
    obskit.flush()
    assert sorted(e.title for e in memory.errors) == ["before_send ran", "outer"]
