"""capture_exception / capture_message: what an ErrorEvent holds, and capture never raising."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import pytest

import obskit
from obskit import diagnostics
from obskit.exporters import InMemoryExporter
from obskit.exporters._render import json_line, pretty_line
from obskit.signals import ErrorEvent


class PaymentDeclined(Exception):
    pass


def charge(amount: float) -> None:
    raise PaymentDeclined(f"card declined for {amount}")


def checkout(amount: float) -> None:
    charge(amount)


def test_capture_exception_returns_an_event_with_a_string_fingerprint(
    memory: InMemoryExporter,
) -> None:
    try:
        checkout(12.5)
    except PaymentDeclined as exc:
        event = obskit.capture_exception(exc)
    assert isinstance(event, ErrorEvent)
    assert isinstance(event.fingerprint, str) and len(event.fingerprint) == 32
    assert event.title == "PaymentDeclined: card declined for 12.5"
    assert event.level == "error"
    assert event.culprit.endswith(" in charge")
    (entry,) = event.exceptions
    assert entry["type"] == "PaymentDeclined" and entry["value"] == "card declined for 12.5"
    functions = [frame["function"] for frame in entry["frames"]]
    assert functions[-2:] == ["checkout", "charge"]
    crash = entry["frames"][-1]
    assert crash["context_line"] == 'raise PaymentDeclined(f"card declined for {amount}")'
    assert crash["in_app"] is True and crash["lineno"] > 0
    assert set(crash) >= {"module", "function", "filename", "lineno", "context_line", "in_app"}


def test_without_an_argument_it_captures_the_exception_being_handled(
    memory: InMemoryExporter,
) -> None:
    try:
        checkout(1)
    except PaymentDeclined:
        event = obskit.capture_exception()
    assert event is not None and event.title.startswith("PaymentDeclined")
    assert obskit.capture_exception() is None  # nothing is being handled here


def test_every_event_goes_through_the_pipeline_as_json_safe_data(
    memory: InMemoryExporter,
) -> None:
    try:
        checkout(3)
    except PaymentDeclined as exc:
        event = obskit.capture_exception(exc)
    obskit.flush()
    assert memory.errors == [event]
    data = event.to_dict() if event else {}
    assert next(iter(data)) == "signal" and data["signal"] == "error"
    assert json.loads(json.dumps(data)) == json.loads(json_line(memory.errors[0]))
    assert "captured PaymentDeclined" in pretty_line(memory.errors[0], colors=False)


def test_the_chain_of_causes_and_contexts_is_kept_outermost_first(
    memory: InMemoryExporter,
) -> None:
    try:
        try:
            {}["missing"]
        except KeyError as inner:
            raise RuntimeError("lookup failed") from inner
    except RuntimeError as exc:
        event = obskit.capture_exception(exc)
    assert event is not None
    assert [e["type"] for e in event.exceptions] == ["RuntimeError", "KeyError"]
    try:
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            raise ValueError("during handling") from None
    except ValueError as exc:
        suppressed = obskit.capture_exception(exc)
    assert suppressed is not None and len(suppressed.exceptions) == 1


def test_event_carries_context_user_tags_release_and_trace_ids(memory: InMemoryExporter) -> None:
    obskit.init(service="shop", environment="prod", release="1.2.3", exporters=[memory])
    with obskit.request("POST /checkout", user_id="u-9") as req:
        try:
            checkout(5)
        except PaymentDeclined as exc:
            event = obskit.capture_exception(exc, tags={"region": "eu"}, order_id=7)
    assert event is not None
    assert event.context["request_id"] == req.request_id and event.context["order_id"] == 7
    assert event.user == {"id": "u-9"} and event.tags == {"region": "eu"}
    assert (event.service, event.environment, event.release) == ("shop", "prod", "1.2.3")
    assert event.trace_id == req.trace_id and event.span_id


def test_capture_message_groups_by_the_parameterised_text(memory: InMemoryExporter) -> None:
    first = obskit.capture_message("cache miss for user 42 after 3.5s", level="warning")
    second = obskit.capture_message("cache miss for user 7 after 0.2s", level="warning")
    other = obskit.capture_message("cache evicted", level="warning")
    assert first is not None and second is not None and other is not None
    assert first.fingerprint == second.fingerprint != other.fingerprint
    assert first.level == "warning" and first.exceptions == []
    assert first.title == "cache miss for user 42 after 3.5s"
    assert first.culprit.endswith("test_capture_message_groups_by_the_parameterised_text")


def test_include_locals_adds_scrubbed_truncated_variables_of_in_app_frames(
    memory: InMemoryExporter,
) -> None:
    obskit.init(exporters=[memory], include_locals=True)

    def handler() -> None:
        password = "hunter2"  # noqa: F841
        big = "x" * 5000  # noqa: F841
        note = "call me at bob@example.com"  # noqa: F841
        raise ValueError("boom")

    try:
        handler()
    except ValueError as exc:
        event = obskit.capture_exception(exc)
    assert event is not None
    variables = event.exceptions[0]["frames"][-1]["vars"]
    assert variables["password"] == "[Filtered]"
    assert len(variables["big"]) < 300 and variables["big"].endswith("[truncated]")
    assert "bob@example.com" not in variables["note"]


def test_a_custom_fingerprint_replaces_the_default_and_can_extend_it(
    memory: InMemoryExporter,
) -> None:
    def fail() -> ErrorEvent | None:
        try:
            checkout(1)
        except PaymentDeclined as exc:
            return obskit.capture_exception(exc, fingerprint=fingerprint)
        return None

    fingerprint: Any = None
    default = fail()
    fingerprint = ["{{ default }}"]
    same = fail()
    fingerprint = ["{{ default }}", "tenant-a"]
    split = fail()
    fingerprint = ["payments-down"]
    custom = fail()
    assert default and same and split and custom
    assert default.fingerprint == same.fingerprint
    assert len({default.fingerprint, split.fingerprint, custom.fingerprint}) == 3


# -- bad input: capture never raises into the app ------------------------------------------


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_an_exception_whose_str_and_repr_raise_is_still_captured(
    memory: InMemoryExporter,
) -> None:
    try:
        raise Unprintable()
    except Unprintable as exc:
        event = obskit.capture_exception(exc)
    assert event is not None and event.title.startswith("Unprintable: <unprintable")


def test_a_cyclic_cause_chain_is_cut(memory: InMemoryExporter) -> None:
    first, second = ValueError("a"), KeyError("b")
    first.__cause__, second.__cause__ = second, first
    event = obskit.capture_exception(first)
    assert event is not None and [e["type"] for e in event.exceptions] == ["ValueError", "KeyError"]


def test_a_10000_frame_recursion_is_captured_with_a_bounded_event(
    memory: InMemoryExporter,
) -> None:
    def dive(depth: int) -> None:
        if depth == 0:
            raise RecursionError("bottom")
        dive(depth - 1)

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(12_000)
    try:
        try:
            dive(10_000)
        except RecursionError as exc:
            event = obskit.capture_exception(exc)
    finally:
        sys.setrecursionlimit(limit)
    assert event is not None
    (entry,) = event.exceptions
    assert len(entry["frames"]) == 100 and entry["frames_omitted"][1] > 9_900
    obskit.flush()
    assert len(json_line(memory.errors[0])) < 100_000


@pytest.mark.parametrize("thing", ["a string", 42, None.__class__, object()])
def test_non_exceptions_are_reported_once_and_ignored(memory: InMemoryExporter, thing: Any) -> None:
    assert obskit.capture_exception(thing) is None
    assert obskit.capture_exception(thing) is None
    assert diagnostics.problem_counts()["capture_not_exception"] == 2


def test_a_broken_before_send_keeps_the_event_and_is_reported(
    memory: InMemoryExporter,
) -> None:
    def broken(event: ErrorEvent, hint: dict[str, Any]) -> ErrorEvent:
        raise RuntimeError("hook bug")

    obskit.init(exporters=[memory], before_send=broken)
    event = obskit.capture_exception(ValueError("x"))
    assert event is not None
    obskit.flush()
    assert len(memory.errors) == 1
    assert diagnostics.problem_counts()["before_send"] == 1


def test_before_send_can_edit_or_drop_and_sees_the_exception(memory: InMemoryExporter) -> None:
    seen: list[Any] = []

    def before_send(event: ErrorEvent, hint: dict[str, Any]) -> ErrorEvent | None:
        seen.append(hint["exc_info"][1])
        if isinstance(hint["exc_info"][1], KeyError):
            return None
        event.tags["edited"] = True
        event.exceptions[0]["value"] = "rewritten, password=hunter2"
        return event

    obskit.init(exporters=[memory], before_send=before_send)
    dropped = KeyError("k")
    assert obskit.capture_exception(dropped) is None
    kept = obskit.capture_exception(ValueError("v"))
    assert kept is not None and kept.tags == {"edited": True}
    obskit.flush()
    (exported,) = memory.errors
    assert exported.exceptions[0]["value"] == "rewritten, password=[Filtered]"
    assert seen[0] is dropped
    assert obskit.errors.groups()[0].count == 1  # a dropped event is not counted


def test_ignore_errors_and_sample_rate_drop_events_early(memory: InMemoryExporter) -> None:
    obskit.init(exporters=[memory], ignore_errors=[KeyError, f"{__name__}.PaymentDeclined"])
    assert obskit.capture_exception(KeyError("k")) is None
    assert obskit.capture_exception(PaymentDeclined("p")) is None
    assert obskit.capture_exception(ValueError("v")) is not None
    obskit.init(exporters=[memory], sample_rate=0.0)
    assert obskit.capture_exception(ValueError("v")) is None
    assert obskit.capture_message("m") is None


def test_events_and_their_shared_parts_are_read_only(memory: InMemoryExporter) -> None:
    obskit.add_breadcrumb("db", "SELECT 1")
    event = obskit.capture_exception(ValueError("v"))
    assert event is not None
    with pytest.raises(TypeError, match="read-only"):
        event.breadcrumbs[0]["message"] = "changed"  # type: ignore[index]
    assert dict(event.breadcrumbs[0])["message"] == "SELECT 1"


def test_capturing_the_same_exception_again_returns_its_first_event(
    memory: InMemoryExporter,
) -> None:
    @obskit.instrument
    def job() -> None:
        raise ValueError("once")

    try:
        job()  # @instrument captures it on the way out
    except ValueError as exc:
        again = obskit.capture_exception(exc)
        and_again = obskit.capture_exception()
    assert again is not None and again is and_again
    obskit.flush()
    assert memory.errors == [again] and obskit.errors.groups()[0].count == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_captures_with_its_own_groups(memory: InMemoryExporter) -> None:
    obskit.capture_exception(ValueError("in the parent"))
    pid = os.fork()
    if pid == 0:  # the child reports through its exit status
        status = 1
        try:
            event = obskit.capture_exception(ValueError("in the child"))
            status = 0 if event is not None and len(obskit.errors.groups()) == 1 else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert obskit.errors.groups()[0].count == 1
