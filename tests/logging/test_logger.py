"""The structured logger: JSON form, levels, derived loggers, specialised events, safety."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import obskit
from obskit.exporters import InMemoryExporter
from obskit.exporters._render import json_line


def test_json_form_has_event_and_top_level_context(memory: InMemoryExporter) -> None:
    log = obskit.get_logger("shop", region="eu")
    with obskit.context(request_id="r-1"):
        log.info("checkout started", cart_items=3)
    obskit.flush()
    (rec,) = memory.logs
    data = json.loads(json_line(rec))
    assert data["event"] == "checkout started"
    assert data["request_id"] == "r-1" and data["cart_items"] == 3 and data["region"] == "eu"
    assert data["level"] == "info" and data["logger"] == "shop"
    assert data["service"] == "test" and data["timestamp"].endswith("Z")


def test_level_filtering_and_reconfiguration() -> None:
    memory = InMemoryExporter()
    obskit.init(exporters=[memory], level="warning")
    log = obskit.get_logger("lvl")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    log.critical("c")
    log.log("error", "by name")
    log.log(logging.DEBUG, "by number")
    obskit.flush()
    assert [r.event for r in memory.logs] == ["w", "e", "c", "by name"]
    assert not log.is_enabled_for("info")


def test_call_fields_beat_bound_fields_beat_context(memory: InMemoryExporter) -> None:
    log = obskit.get_logger("p").bind(who="bound")
    with obskit.context(who="context", only_ctx=1):
        log.info("a")
        log.info("b", who="call")
    obskit.flush()
    first, second = memory.logs
    assert first.fields["who"] == "bound" and first.fields["only_ctx"] == 1
    assert second.fields["who"] == "call"


def test_child_and_bind(memory: InMemoryExporter) -> None:
    parent = obskit.get_logger("app", a=1)
    child = parent.child("db", b=2)
    bound = child.bind(c=3)
    bound.info("query")
    obskit.flush()
    (rec,) = memory.logs
    assert rec.logger == "app.db"
    assert rec.fields == {"a": 1, "b": 2, "c": 3}


def test_specialised_events_set_a_category(memory: InMemoryExporter) -> None:
    log = obskit.get_logger("events")
    log.user_action("signed in", user_id="u-1")
    log.performance("db.query", 12.5, unit="ms", table="orders")
    log.business("order placed", amount=42)
    log.security("permission denied", resource="/admin")
    obskit.flush()
    cats = [(r.fields["category"], r.level) for r in memory.logs]
    assert cats == [
        ("user_action", "info"),
        ("performance", "info"),
        ("business", "info"),
        ("security", "warning"),
    ]
    perf = memory.logs[1].fields
    assert (perf["metric"], perf["value"], perf["unit"]) == ("db.query", 12.5, "ms")


def test_exception_logging_carries_the_traceback(memory: InMemoryExporter) -> None:
    log = obskit.get_logger("exc")
    try:
        raise ValueError("bad value")
    except ValueError:
        log.exception("failed")
    obskit.flush()
    (rec,) = memory.logs
    assert rec.level == "error"
    assert "ValueError: bad value" in rec.exception and "Traceback" in rec.exception


def test_positional_args_are_interpolated_and_bad_ones_do_not_raise(
    memory: InMemoryExporter,
) -> None:
    log = obskit.get_logger("fmt")
    log.info("user %s has %d items", "ann", 3)
    log.info("broken %d", "not a number")
    obskit.flush()
    assert memory.logs[0].event == "user ann has 3 items"
    assert memory.logs[1].event.startswith("broken %d")


def test_trace_and_span_ids_inside_a_request(memory: InMemoryExporter) -> None:
    log = obskit.get_logger("trace")
    with obskit.request("GET /x") as req:
        log.info("inside")
    log.info("outside")
    obskit.flush()
    inside, outside = memory.logs
    assert inside.trace_id == req.trace_id and inside.span_id and len(inside.trace_id) == 32
    assert outside.trace_id is None


def test_logging_before_init_uses_console_defaults(capsys: Any) -> None:
    obskit.shutdown()
    obskit.get_logger("early").info("before init", n=1)
    obskit.flush()
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(line)["event"] == "before init"


def test_broken_user_processor_never_raises(memory: InMemoryExporter) -> None:
    def broken(logger: Any, method: str, event_dict: Any) -> Any:
        raise RuntimeError("processor bug")

    obskit.init(exporters=[memory], processors=[broken])
    obskit.get_logger("p").info("still logged")
    obskit.flush()
    assert [r.event for r in memory.logs] == ["still logged"]
    assert "log_call" in obskit.pipeline_stats()["problems"]


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr bug")

    __str__ = __repr__


class BrokenStrException(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str bug")


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
    st.binary(max_size=50),
    st.builds(BrokenRepr),
    st.builds(BrokenStrException),
    st.builds(object),
    st.integers(min_value=9_000, max_value=30_000).map(lambda n: "ab" * n),
)
payloads = st.recursive(
    json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.tuples(children, children),
        st.dictionaries(st.one_of(st.text(max_size=10), st.integers()), children, max_size=5),
    ),
    max_leaves=30,
)


@given(payload=payloads, message=st.one_of(st.text(max_size=100), st.builds(BrokenRepr)))
def test_arbitrary_payloads_never_raise_and_give_valid_json(payload: Any, message: Any) -> None:
    memory = InMemoryExporter()
    obskit.init(exporters=[memory])
    cyclic: dict[str, Any] = {"payload": payload}
    cyclic["self"] = cyclic
    log = obskit.get_logger("fuzz")
    log.info(message, payload=payload, cyclic=cyclic, blob=b"\xff\xfe")
    log.error("with exception", exc_info=BrokenStrException())
    obskit.flush()
    assert len(memory.logs) == 2
    for rec in memory.logs:
        line = json_line(rec)
        assert "\n" not in line
        data = json.loads(line)
        assert isinstance(data["event"], str)
        _assert_json_safe(data)
    assert json.loads(json_line(memory.logs[0]))["cyclic"]["self"] == "[cycle]"


def _assert_json_safe(value: Any) -> None:
    if isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, dict):
        for item in value.values():
            _assert_json_safe(item)
    elif isinstance(value, list):
        for item in value:
            _assert_json_safe(item)
    else:
        assert value is None or isinstance(value, (str, int, bool))


def test_huge_strings_are_truncated_with_a_marker(memory: InMemoryExporter) -> None:
    obskit.get_logger("big").info("x", blob="a" * 100_000)
    obskit.flush()
    blob = memory.logs[0].fields["blob"]
    assert len(blob) < 10_000 and "truncated" in blob
