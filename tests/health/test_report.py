"""Aggregation rules and the IETF health+json report (draft-inadarei-api-health-check)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import obskit
from obskit.health import CheckResult, HealthRegistry, HealthReport, Status, aggregate


def result(status: str, critical: bool = True) -> CheckResult:
    return CheckResult(Status(status), critical=critical)


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([], "pass"),
        ([result("pass"), result("pass")], "pass"),
        ([result("pass"), result("warn")], "warn"),
        ([result("pass"), result("fail", critical=False)], "warn"),
        ([result("warn", critical=False), result("pass")], "warn"),
        ([result("fail", critical=False), result("fail", critical=False)], "warn"),
        ([result("pass"), result("fail")], "fail"),
        ([result("warn"), result("fail", critical=False), result("fail")], "fail"),
    ],
)
def test_any_critical_fail_fails_a_non_critical_fail_or_any_warn_warns(
    results: list[CheckResult], expected: str
) -> None:
    assert aggregate(results) == expected


def test_the_report_aggregates_registered_checks_by_the_same_rules(clock: Any) -> None:
    registry = HealthRegistry(clock=clock)
    registry.register("db", lambda: True)
    registry.register("search", lambda: False, critical=False)
    report = registry.run()
    assert report.status == "warn" and report.http_status == 200
    registry.register("payments", lambda: False)
    report = registry.run()
    assert report.status == "fail" and report.http_status == 503
    assert report.output == "payments: returned False; search: returned False"


def test_status_is_a_str_enum_and_parses_the_aliases_peers_use() -> None:
    assert Status.PASS == "pass" and f"{Status.WARN}" == "warn"
    assert json.dumps({"s": Status.FAIL}) == '{"s": "fail"}'
    for alias, status in [("UP", "pass"), ("ok", "pass"), ("Down", "fail"), ("degraded", "warn")]:
        assert Status.parse(alias) == status
    with pytest.raises(ValueError, match="use 'pass', 'warn' or 'fail'"):
        Status.parse("green")
    assert CheckResult("warn").status is Status.WARN  # type: ignore[arg-type]


def test_to_dict_follows_the_ietf_draft(clock: Any) -> None:
    obskit.init(service="shop", release="1.4.2", exporters=[])
    registry = HealthRegistry(clock=clock)
    registry.register("db", lambda: True, component_type="datastore")
    registry.register(
        "queue",
        lambda: CheckResult.warn(
            "backlog growing", observed_value=950, observed_unit="messages", details={"max": 1000}
        ),
        measurement="depth",
    )
    registry.register("cpu", lambda: CheckResult.ok(observed_value=12.5, observed_unit="percent"))
    doc = json.loads(json.dumps(registry.run().to_dict()))

    assert doc["status"] == "warn"
    assert doc["serviceId"] == "shop" and doc["releaseId"] == "1.4.2"
    assert doc["output"] == "queue: backlog growing"
    assert set(doc["checks"]) == {"db:responseTime", "queue:depth", "cpu"}
    (db,) = doc["checks"]["db:responseTime"]  # each value is a one-item array
    assert db["status"] == "pass" and db["componentType"] == "datastore"
    assert db["observedUnit"] == "ms" and isinstance(db["observedValue"], float)
    assert db["time"] == "2023-11-14T22:13:20.000Z"  # RFC 3339 from the injected clock
    assert "output" not in db  # the draft: omitted for pass
    (queue,) = doc["checks"]["queue:depth"]
    assert queue == {
        "status": "warn",
        "componentType": "component",
        "observedValue": 950,
        "observedUnit": "messages",
        "time": "2023-11-14T22:13:20.000Z",
        "output": "backlog growing",
        "details": {"max": 1000},
    }
    assert doc["checks"]["cpu"][0]["observedValue"] == 12.5


def test_verbose_false_keeps_only_the_status() -> None:
    report = HealthReport(Status.FAIL, {"db": CheckResult.fail("password=hunter2", name="db")}, 0)
    assert report.to_dict(verbose=False) == {"status": "fail"}


def test_a_report_becomes_a_signal_with_the_same_checks_document() -> None:
    report = HealthReport(Status.WARN, {"db": CheckResult.warn("slow", name="db")}, time=5.0)
    signal = report.to_signal(changed=["db"])
    assert signal.kind == "health"
    assert signal.status == "warn" and signal.changed == ["db"] and signal.timestamp == 5.0
    assert signal.checks == report.to_dict()["checks"]
