"""A log call without user processors is made in one step: the same record as the chain's."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import obskit
from obskit.exporters import InMemoryExporter
from obskit.logging import CHAIN

_names = st.sampled_from(["event", "user", "exc_info", "exception", "region", "n", "logger"])
_values = st.one_of(st.none(), st.integers(), st.text(max_size=8), st.booleans())
_fields = st.dictionaries(_names, _values, max_size=4)


def _record(
    *, plain: bool, scope: dict[str, Any], bound: dict[str, Any], call: dict[str, Any], event: Any
) -> dict[str, Any]:
    memory = InMemoryExporter()
    # a processor that changes nothing still sends every call through structlog's chain
    processors = [] if plain else [lambda logger, method, event_dict: event_dict]
    obskit.init(
        service="t", exporters=[memory], level="debug", processors=processors, install_hooks=False
    )
    assert (len(CHAIN) == 2) is plain
    log = obskit.get_logger("shop", **bound)
    with obskit.context(**scope):
        log.warning(event, **call)
    obskit.flush()
    (record,) = memory.logs
    out = record.to_dict()
    out.pop("timestamp")
    return out


@given(scope=_fields, bound=_fields, call=_fields, event=st.one_of(st.none(), st.text(max_size=8)))
def test_the_one_step_record_is_the_chains(
    scope: dict[str, Any], bound: dict[str, Any], call: dict[str, Any], event: Any
) -> None:
    call = {k: v for k, v in call.items() if k != "event"}  # (a keyword the call itself takes)
    args = {"scope": scope, "bound": bound, "call": call, "event": event}
    assert _record(plain=True, **args) == _record(plain=False, **args)
