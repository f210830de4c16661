"""The contract every detector keeps: bad input never raises, state survives a restart."""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from obskit import anomaly, diagnostics
from obskit.config import ConfigError

from .conftest import FACTORIES, Factory

every_detector = pytest.mark.parametrize("name", sorted(FACTORIES))
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
anything = st.one_of(
    st.floats(),  # NaN, inf, 1e300, subnormals
    st.integers(min_value=-(10**400), max_value=10**400),
    st.none(),
    st.text(max_size=3),
    st.booleans(),
    st.just(Decimal("1.5")),
    st.just(1e300),
    st.just(-1e300),
    st.just(object()),
)
any_timestamp = st.one_of(
    st.none(),
    st.floats(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.text(max_size=3),
    st.just(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)),
)


@every_detector
@given(points=st.lists(st.tuples(anything, any_timestamp), max_size=60))
def test_update_never_raises_and_scores_stay_in_unit_interval(
    name: str, points: list[tuple[Any, Any]]
) -> None:
    detector = FACTORIES[name]()
    for value, moment in points:
        result = detector.update(value, moment)
        assert 0.0 <= result.score <= 1.0
        assert isinstance(result.is_anomaly, bool)
        if result.skipped:
            assert result.score == 0.0 and not result.is_anomaly


@every_detector
@given(values=st.lists(anything, max_size=40))
def test_update_many_never_raises(name: str, values: list[Any]) -> None:
    results = FACTORIES[name]().update_many(values)
    assert len(results) == len(values)
    assert all(0.0 <= result.score <= 1.0 for result in results)


@pytest.mark.parametrize(
    ("bad", "kind"),
    [
        (math.nan, "value_not_finite"),
        (math.inf, "value_not_finite"),
        (-math.inf, "value_not_finite"),
        (1e300, "value_too_large"),
        (-1e151, "value_too_large"),
        (10**400, "value_too_large"),
        (None, "value_not_numeric"),
        ("12", "value_not_numeric"),
        (object(), "value_not_numeric"),
    ],
)
def test_bad_values_are_skipped_and_counted(factory: Factory, bad: Any, kind: str) -> None:
    detector = factory()
    detector.update_many([1.0, 2.0, 1.0])
    before = detector.state()["data"]
    result = detector.update(bad)
    assert result.skipped and result.value is None and result.score == 0.0
    assert detector.problems == {kind: 1}
    assert detector.state()["data"] == before  # nothing was learned from it
    assert diagnostics.problem_counts()[f"anomaly.{kind}"] == 1


def test_numbers_of_other_types_are_accepted(factory: Factory) -> None:
    detector = factory()
    results = detector.update_many([1, Decimal("2.5"), True, 3.0])
    assert not any(result.skipped for result in results)
    assert detector.problems == {}


def test_timestamps_going_backwards_are_clamped_and_counted(factory: Factory) -> None:
    detector = factory()
    detector.update(1.0, 1000.0)
    detector.update(1.0, 999.0)
    detector.update(1.0, 1000)
    detector.update(1.0, dt.datetime.fromtimestamp(2000, tz=dt.timezone.utc))
    detector.update(1.0, "yesterday")
    detector.update(1.0, 1999.5)
    assert detector.problems == {
        "timestamp_backwards": 2,
        "timestamp_repeated": 1,
        "timestamp_invalid": 1,
    }
    assert detector.last_timestamp == 2000.0
    assert detector.seen == 6  # the values still count


def test_warmup_never_flags(factory: Factory) -> None:
    detector = factory()
    results = detector.update_many([1.0, 1e100, -1e100])  # warm-up is 3 points
    assert [result.is_anomaly for result in results] == [False, False, False]
    assert [result.score for result in results] == [0.0, 0.0, 0.0]


def test_constant_series_never_flags_but_a_change_does(factory: Factory) -> None:
    detector = factory()
    assert not any(result.is_anomaly for result in detector.update_many([7.0] * 500))
    assert detector.update(9.0).is_anomaly


def test_empty_history_is_fine(factory: Factory) -> None:
    detector = factory()
    assert detector.update_many([]) == []
    json.dumps(detector.state(), allow_nan=False)
    assert anomaly.from_state(detector.state()).update(1.0).score == 0.0


@every_detector
@given(
    prefix=st.lists(finite, max_size=40),
    suffix=st.lists(finite, min_size=1, max_size=20),
    hinted=st.booleans(),
)
def test_from_state_continues_with_identical_scores(
    name: str, prefix: list[float], suffix: list[float], hinted: bool
) -> None:
    hint = {"value_range": (-1e6, 1e6)} if hinted else {}
    original = FACTORIES[name](**hint)
    stamps = [1_700_000_000.0 + 60 * i for i in range(len(prefix) + len(suffix))]
    original.update_many(prefix, stamps[: len(prefix)])
    blob = json.loads(json.dumps(original.state(), allow_nan=False))  # as stored on disk
    restored = anomaly.from_state(blob)
    assert type(restored) is type(original)
    for value, moment in zip(suffix, stamps[len(prefix) :], strict=True):
        assert restored.update(value, moment) == original.update(value, moment)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path inside a JSON-like tree."""
    found = [path] if path else []
    if isinstance(node, dict):
        for key, child in node.items():
            found.extend(_paths(child, (*path, key)))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found.extend(_paths(child, (*path, index)))
    return found


@every_detector
@given(
    values=st.lists(finite, min_size=5, max_size=20),
    pick=st.integers(min_value=0),
    garbage=st.one_of(
        st.none(), st.text(max_size=2), st.just(math.nan), st.just(-5), st.just([]), st.just({})
    ),
)
def test_corrupted_state_raises_state_error_or_loads_a_working_detector(
    name: str, values: list[float], pick: int, garbage: Any
) -> None:
    detector = FACTORIES[name]()
    detector.update_many(values)
    blob = detector.state()
    paths = _paths(blob)
    path = paths[pick % len(paths)]
    damaged = copy.deepcopy(blob)
    parent = damaged
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = garbage
    try:
        restored = anomaly.from_state(damaged)
    except anomaly.StateError:
        return
    assert 0.0 <= restored.update(1.0).score <= 1.0


@pytest.mark.parametrize(
    "blob",
    [None, "state", [], {}, {"detector": "nope"}, {"detector": "ewma", "version": 99}],
)
def test_state_that_is_not_a_detector_state_is_refused_clearly(blob: Any) -> None:
    with pytest.raises(anomaly.StateError):
        anomaly.from_state(blob)


def test_state_error_is_a_config_error() -> None:
    assert issubclass(anomaly.StateError, ConfigError)


@pytest.mark.parametrize("hint", [(5, 1), (math.nan, 1), (math.inf, None), "ab", (1,), 3])
def test_a_bad_value_range_hint_is_a_config_error(factory: Factory, hint: Any) -> None:
    with pytest.raises(ConfigError, match="value_range"):
        factory(value_range=hint)


def test_a_single_value_range_is_accepted(factory: Factory) -> None:
    detector = factory(value_range=(45, 45))  # NAB's flat-line file has min == max
    assert not any(result.is_anomaly for result in detector.update_many([45.0] * 50))


@every_detector
@given(points=st.lists(st.tuples(anything, any_timestamp), max_size=40))
def test_state_stays_json_safe_whatever_came_in(name: str, points: list[tuple[Any, Any]]) -> None:
    detector = FACTORIES[name]()
    for value, moment in points:
        detector.update(value, moment)
    blob = json.loads(json.dumps(detector.state(), allow_nan=False))
    restored = anomaly.from_state(blob)
    assert restored.update(1.0, None) == detector.update(1.0, None)
