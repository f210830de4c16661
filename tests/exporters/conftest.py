"""Fixtures for the exporter tests: running OTLP receivers (see ``otlp_receiver.py``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the tests import otlp_receiver as a helper

from otlp_receiver import HttpReceiver, Receiver, make_receiver


@pytest.fixture(params=["grpc", "http/protobuf"])
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    """A running OTLP receiver, once per protocol."""
    server = make_receiver(request.param)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def http_receiver() -> Iterator[Receiver]:
    server = HttpReceiver()
    server.start()
    yield server
    server.stop()
