"""Health test set-up: a clean default registry per test, a controllable clock, a metric sink."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import obskit


@pytest.fixture(autouse=True)
def _clean_default_registry() -> Iterator[None]:
    obskit.health.clear()
    yield
    obskit.health.clear()
    obskit.health.close()


class FakeClock:
    """A clock the test moves by hand: ``clock()`` reads it, ``clock.advance(s)`` moves it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
