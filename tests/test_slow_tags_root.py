"""Slow calls (``slow_ms`` on @instrument, request, timer and the setting), scoped tags
(``init(tags=)``, ``set_tags``, ``context(tags=)``, per call) and ``@instrument(root=True)``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import obskit
from obskit.exporters import InMemoryExporter


def setup(**settings: Any) -> InMemoryExporter:
    memory = InMemoryExporter()
    obskit.init(exporters=[memory], install_hooks=False, **settings)
    return memory


def flushed(memory: InMemoryExporter) -> InMemoryExporter:
    assert obskit.flush(10)
    return memory


class Clock:
    """perf_counter for instrumentation, driven by the test."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from obskit import instrumentation

    driven = Clock()
    monkeypatch.setattr(instrumentation.time, "perf_counter", driven)
    return driven


def slow_records(memory: InMemoryExporter) -> list[Any]:
    return [r for r in flushed(memory).logs if r.logger == "obskit.slow"]


def test_instrument_slow_ms_warns_once_per_slow_call(clock: Clock) -> None:
    memory = setup()

    @obskit.instrument(slow_ms=50)
    def charge(amount_ms: float) -> str:
        clock.now += amount_ms / 1000
        return "ok"

    assert charge(10) == "ok"
    assert slow_records(memory) == []
    charge(80)
    charge(62.5)
    records = slow_records(memory)
    assert [r.level for r in records] == ["warning", "warning"]
    assert records[0].event.startswith("slow function: ")
    assert records[0].fields["function"].endswith("charge")
    assert records[0].fields["duration_ms"] == pytest.approx(80)
    assert records[0].fields["threshold_ms"] == 50
    assert memory.errors == []  # no event unless asked
    obskit.capture_message("later", level="error")
    [event] = flushed(memory).errors
    assert sum(1 for b in event.breadcrumbs if b["message"].startswith("slow function")) == 2


def test_global_slow_ms_applies_to_requests_timers_and_functions(clock: Clock) -> None:
    memory = setup(slow_ms=100)

    @obskit.instrument
    async def fetch() -> None:
        clock.now += 0.2

    with obskit.request("GET /cart") as request:
        asyncio.run(fetch())
    with obskit.timer("rebuild"):
        clock.now += 0.5
    with obskit.timer("quick"):
        clock.now += 0.01
    with obskit.request("GET /fast", slow_ms=1000):  # the call's own threshold wins
        clock.now += 0.5
    records = slow_records(memory)
    kinds = sorted((r.event.split(":")[0], r.fields["duration_ms"]) for r in records)
    assert kinds == [("slow block", 500.0), ("slow function", 200.0), ("slow request", 200.0)]
    [req] = [r for r in records if r.event == "slow request: GET /cart"]
    assert req.fields["request_id"] == request.request_id


def test_slow_capture_makes_one_group_per_call_site(clock: Clock) -> None:
    memory = setup(slow_ms=10, slow_capture=True)

    @obskit.instrument
    def export_report() -> None:
        clock.now += 0.05

    @obskit.instrument
    def import_rows() -> None:
        clock.now += 0.05

    for _ in range(3):
        export_report()
        import_rows()
    events = flushed(memory).errors
    assert len(events) == 6 and {e.level for e in events} == {"warning"}
    groups = {e.fingerprint: e.culprit for e in events}
    assert len(groups) == 2
    assert sorted(c.rsplit(".", 1)[-1] for c in groups.values()) == ["export_report", "import_rows"]


def test_bad_slow_ms_is_a_config_error() -> None:
    with pytest.raises(obskit.ConfigError, match="slow_ms"):
        obskit.instrument(slow_ms=-1)
    with pytest.raises(obskit.ConfigError, match="slow_ms"):
        obskit.init(slow_ms=-5)


def test_tags_from_init_scope_and_call_merge_inner_wins() -> None:
    memory = setup(tags={"region": "eu", "tier": "free"})
    with obskit.context(tags={"tenant": "acme", "tier": "gold"}):
        obskit.set_tags(cart="big")
        with obskit.request("checkout", tags={"step": "pay"}):
            obskit.capture_message("declined", level="error", tags={"step": "retry"})
        obskit.capture_message("outside the request", level="error")
    obskit.capture_message("after the scope", level="error")
    first, second, third = flushed(memory).errors
    assert first.tags == {
        "region": "eu",
        "tier": "gold",
        "tenant": "acme",
        "cart": "big",
        "step": "retry",
    }
    assert second.tags == {"region": "eu", "tier": "gold", "tenant": "acme", "cart": "big"}
    assert third.tags == {"region": "eu", "tier": "free"}
    assert "tags" not in first.context  # tags are not context fields
    [span] = memory.spans
    assert {k: span.attributes[k] for k in ("region", "tier", "tenant", "cart", "step")} == {
        "region": "eu",
        "tier": "gold",
        "tenant": "acme",
        "cart": "big",
        "step": "pay",
    }


def test_tags_reach_otlp_attributes() -> None:
    from obskit.exporters._otlp_encode import encode_logs, encode_spans

    memory = setup(tags={"region": "eu"})
    with obskit.request("job", tags={"tenant": "acme"}):
        obskit.capture_message("oops", level="error")
    flushed(memory)
    [log_record] = [
        r
        for rl in encode_logs(memory.errors, _resource(), "0").resource_logs
        for sl in rl.scope_logs
        for r in sl.log_records
    ]
    attributes = {a.key: a.value.string_value for a in log_record.attributes}
    assert attributes["tags.region"] == "eu" and attributes["tags.tenant"] == "acme"
    [span] = [
        s
        for rs in encode_spans(memory.spans, _resource(), "0").resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]
    span_attributes = {a.key: a.value.string_value for a in span.attributes}
    assert span_attributes["region"] == "eu" and span_attributes["tenant"] == "acme"


def _resource() -> Any:
    from obskit.exporters._otlp_encode import resource_proto

    return resource_proto({"service.name": "test"})


def test_instrument_root_opens_a_root_span_only_without_a_trace() -> None:
    memory = setup()

    @obskit.instrument(root=True)
    def nightly_job() -> None:
        step()

    @obskit.instrument
    def step() -> None:
        pass

    nightly_job()
    step()  # outside any trace: no span, as before
    with obskit.request("GET /run"):
        nightly_job()  # inside a trace: a child, not a second root
    spans = flushed(memory).spans
    names = [(s.name.rsplit(".", 1)[-1], s.parent_span_id is None) for s in spans]
    assert names == [
        ("step", False),
        ("nightly_job", True),
        ("step", False),
        ("nightly_job", False),
        ("GET /run", True),
    ]


def test_instrument_root_setting() -> None:
    memory = setup(instrument_root=True)

    @obskit.instrument
    def job() -> None:
        pass

    @obskit.instrument(root=False)
    def quiet() -> None:
        pass

    job()
    quiet()
    assert [s.name.rsplit(".", 1)[-1] for s in flushed(memory).spans] == ["job"]
