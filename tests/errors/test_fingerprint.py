"""Grouping invariants, checked on real code: modules written to disk, imported, run, rewritten.

The same crash site keeps its fingerprint when lines are added above it, when the crash line is
only re-formatted, when the project moves, when message values, recursion depth or library
frames change; a different exception type, crash line or cause changes it.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import obskit
from obskit.errors.fingerprint import (
    collapse_recursion,
    fingerprint_for,
    normalise_source,
    parameterise_message,
)
from obskit.exporters import InMemoryExporter

from .conftest import CodeBase

# Function-scoped fixtures are reused across examples on purpose: each example rewrites code.
examples = settings(
    max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)

APP = """\
{padding}
def parse_amount(raw):
{crash}


def handle(raw):
    return parse_amount(raw)
"""
CRASH = '    raise ValueError("bad amount %s" % raw)'


def crash_fingerprint(module: ModuleType, *args: Any) -> str:
    """Run ``module.handle(*args)`` and return the fingerprint of what it raised."""
    try:
        module.handle(*args)
    except Exception as exc:
        event = obskit.capture_exception(exc)
        assert event is not None
        return event.fingerprint
    raise AssertionError("handle() did not raise")


def app_fingerprint(base: CodeBase, crash: str = CRASH, padding: str = "", arg: str = "x") -> str:
    base.write("shop.orders", APP.format(padding=padding, crash=crash))
    return crash_fingerprint(base.load("shop.orders"), arg)


Codebase = Callable[[str], CodeBase]


# -- same crash site, same fingerprint -------------------------------------------------------


def test_fingerprint_survives_line_shift(memory: InMemoryExporter, codebase: Codebase) -> None:
    base = codebase("app")
    before = app_fingerprint(base)
    shifted = app_fingerprint(
        base, padding="import os\n\n# a comment\n\n\ndef other():\n    pass\n"
    )
    assert before == shifted


PADDING_LINES = st.sampled_from(
    ["", "# note", "import os", "X = 1", "def helper():\n    return 2", "class A:\n    b = 3"]
)


@examples
@given(padding=st.lists(PADDING_LINES, max_size=12))
def test_fingerprint_survives_any_lines_added_above(
    memory: InMemoryExporter, codebase: Codebase, padding: list[str]
) -> None:
    base = codebase("app")
    assert app_fingerprint(base, padding="\n".join(padding)) == app_fingerprint(base)


@st.composite
def reformatted(draw: st.DrawFn, template: list[str]) -> str:
    """A random but equivalent layout of ``template`` (tokens; ``S:`` marks a string)."""
    out = ["    "]
    depth = 0
    for index, token in enumerate(template):
        if token == "<,>":
            token = draw(st.sampled_from(["", ","]))
        elif token.startswith("S:"):
            quote = draw(st.sampled_from(['"', "'"]))
            token = f"{quote}{token[2:]}{quote}"
        out.append(token)
        depth += token.count("(") - token.count(")")
        following = template[index + 1] if index + 1 < len(template) else ""
        if not following:
            break
        needs_space = token[-1:].isalnum() and following[:1].isalnum()
        if depth > 0 and draw(st.booleans()) and following != "<,>":
            out.append("\n" + " " * draw(st.integers(4, 12)))
        else:
            out.append(draw(st.sampled_from([" ", "  "] if needs_space else ["", " ", "  "])))
    if draw(st.booleans()):
        out.append("  # why it fails")
    return "".join(out)


RAISE = ["raise", "ValueError", "(", "S:bad amount %s", "%", "raw", "<,>", ")"]
CALL = ["return", "int", "(", "raw", ",", "base", "=", "10", "<,>", ")"]


@examples
@given(layout=reformatted(RAISE), padding=st.lists(PADDING_LINES, max_size=4))
def test_fingerprint_survives_reformatting_the_crash_line(
    memory: InMemoryExporter, codebase: Codebase, layout: str, padding: list[str]
) -> None:
    base = codebase("app")
    canonical = app_fingerprint(base)
    assert app_fingerprint(base, crash=layout, padding="\n".join(padding)) == canonical


@examples
@given(layout=reformatted(CALL))
def test_fingerprint_survives_reformatting_a_failing_call(
    memory: InMemoryExporter, codebase: Codebase, layout: str
) -> None:
    base = codebase("app")
    canonical = app_fingerprint(base, crash="    return int(raw, base=10)")
    assert app_fingerprint(base, crash=layout) == canonical


def test_fingerprint_survives_moving_the_project(
    memory: InMemoryExporter, codebase: Codebase
) -> None:
    here = app_fingerprint(codebase("checkout"))
    moved = codebase("srv/deploy/releases/42")
    there = app_fingerprint(moved)
    assert here == there
    assert obskit.errors.groups()[0].count == 2


@examples
@given(value=st.text(min_size=1, max_size=30))
def test_fingerprint_survives_varying_message_values(
    memory: InMemoryExporter, codebase: Codebase, value: str
) -> None:
    base = codebase("app")
    assert app_fingerprint(base, arg=value) == app_fingerprint(base, arg="x")


RECURSIVE = """\
def walk(node, depth):
    if depth == 0:
        raise LookupError("no leaf under %r" % (node,))
    return walk(node + 1, depth - 1)


def even(n):
    return odd(n - 1) if n else (1 / 0)


def odd(n):
    return even(n - 1)


def handle(kind, depth):
    return walk(0, depth) if kind == "self" else even(2 * depth)
"""


@examples
@given(depth=st.integers(1, 400), kind=st.sampled_from(["self", "mutual"]))
def test_fingerprint_survives_varying_recursion_depth(
    memory: InMemoryExporter, codebase: Codebase, depth: int, kind: str
) -> None:
    base = codebase("app")
    base.write("tree", RECURSIVE)
    module = base.load("tree")
    assert crash_fingerprint(module, kind, depth) == crash_fingerprint(module, kind, 1)


LIBRARY_V1 = """\
def run(callback, value):
    return callback(value)


def parse(raw):
    return _convert(raw)


def _convert(raw):
    return int(raw)
"""
LIBRARY_V2 = """\
# version 2: more layers, more lines
import functools


def run(callback, value):
    return _dispatch(functools.partial(callback), value)


def _dispatch(callback, value):
    value = str(value)
    return callback(value)


def parse(raw):
    raw = raw.strip()
    return _convert(raw)


def _convert(raw):
    return _really_convert(raw)


def _really_convert(raw):
    return int(raw, 10)
"""
USES_LIBRARY = """\
import fakelib


def handler(raw):
    return fakelib.parse(raw)


def handle(raw):
    return fakelib.run(handler, raw)
"""


def test_fingerprint_survives_library_frames_changing_below_and_above(
    memory: InMemoryExporter, codebase: Codebase
) -> None:
    library, app = codebase("venv/lib/site-packages"), codebase("app")
    library.write("fakelib", LIBRARY_V1)
    library.load("fakelib")
    app.write("service", USES_LIBRARY)
    service = app.load("service")
    before = crash_fingerprint(service, "not a number")
    library.write("fakelib", LIBRARY_V2)
    library.load("fakelib")
    after = crash_fingerprint(service, "not a number")
    assert before == after
    (event,) = [e for e in memory_errors(memory) if e.fingerprint == after][-1:]
    frames = event.exceptions[0]["frames"]
    assert [f["function"] for f in frames if f["in_app"]][-1] == "handler"
    assert not frames[-1]["in_app"]


def memory_errors(memory: InMemoryExporter) -> list[Any]:
    obskit.flush()
    return memory.errors


def test_only_library_frames_fall_back_to_all_frames(
    memory: InMemoryExporter, codebase: Codebase
) -> None:
    library = codebase("venv/lib/site-packages")
    library.write("fakelib", LIBRARY_V1)
    fakelib = library.load("fakelib")
    obskit.init(exporters=[memory], in_app_exclude=[__name__.split(".")[0]])
    fingerprints = set()
    for version in (LIBRARY_V1, LIBRARY_V2):
        library.write("fakelib", version)
        library.load("fakelib")
        try:
            fakelib.parse("x")
        except ValueError as exc:
            event = obskit.capture_exception(exc)
            assert event is not None and not any(f["in_app"] for f in event.exceptions[0]["frames"])
            fingerprints.add(event.fingerprint)
    assert len(fingerprints) == 2  # with no in-app frame, library frames do count


# -- a different crash, a different fingerprint --------------------------------------------


def test_a_different_exception_type_changes_the_fingerprint(
    memory: InMemoryExporter, codebase: Codebase
) -> None:
    base = codebase("app")
    other = CRASH.replace("ValueError", "TypeError")
    assert app_fingerprint(base) != app_fingerprint(base, crash=other)


@pytest.mark.parametrize(
    "crash",
    [
        '    raise ValueError("amount rejected %s" % raw)',
        '    raise ValueError("bad amount %s" % raw.strip())',
        '    raise ValueError("bad amount %s" % (raw,))',
    ],
)
def test_a_different_crash_line_changes_the_fingerprint(
    memory: InMemoryExporter, codebase: Codebase, crash: str
) -> None:
    base = codebase("app")
    assert app_fingerprint(base) != app_fingerprint(base, crash=crash)


CAUSED = """\
def parse_amount(raw):
    try:
        return {cause}
    except Exception as exc:
        raise ValueError("bad amount") from exc


def handle(raw):
    return parse_amount(raw)
"""


def test_a_different_cause_changes_the_fingerprint(
    memory: InMemoryExporter, codebase: Codebase
) -> None:
    base = codebase("app")
    results = []
    for cause in ("int(raw)", "{}[raw]", "int(raw)"):
        base.write("caused", CAUSED.format(cause=cause))
        results.append(crash_fingerprint(base.load("caused"), "x"))
    assert results[0] != results[1] and results[0] == results[2]


def test_exceptions_without_a_traceback_group_by_type_and_parameterised_message(
    memory: InMemoryExporter,
) -> None:
    def fingerprint(exc: BaseException) -> str:
        event = obskit.capture_exception(exc)
        assert event is not None
        return event.fingerprint

    assert fingerprint(ValueError("user 42 gone")) == fingerprint(ValueError("user 7 gone"))
    assert fingerprint(ValueError("user 42 gone")) != fingerprint(TypeError("user 42 gone"))
    assert fingerprint(ValueError("user 42 gone")) != fingerprint(ValueError("cart 42 gone"))


# -- the building blocks, property by property ---------------------------------------------


@given(layout=reformatted(RAISE))
def test_normalised_source_ignores_layout(layout: str) -> None:
    assert normalise_source(layout) == normalise_source(CRASH)


@given(layout=reformatted(CALL), other=st.sampled_from(["raw2", "base2", "11"]))
def test_normalised_source_keeps_code_changes(layout: str, other: str) -> None:
    changed = "    return int(raw, base=10)".replace("10" if other == "11" else other[:-1], other)
    assert normalise_source(layout) != normalise_source(changed)


VALUES = {
    "int": st.integers(-(10**12), 10**12).map(str),
    "float": st.floats(0.001, 1e6, allow_nan=False).map(lambda f: f"{f:.3f}"),
    "uuid": st.uuids().map(str),
    "hex": st.integers(0, 2**64).map(hex),
    "email": st.from_regex(r"[a-z]{1,8}\.[a-z]{1,8}@[a-z]{2,8}\.(com|org)", fullmatch=True),
    "ip": st.ip_addresses(v=4).map(str),
    "quoted": st.from_regex(r"[A-Za-z0-9 _-]{0,12}", fullmatch=True).map(lambda s: f"'{s}'"),
    "timestamp": st.datetimes().map(lambda d: d.isoformat(timespec="seconds") + "Z"),
}


@given(values=st.fixed_dictionaries(VALUES))
def test_parameterised_messages_ignore_variable_values(values: dict[str, str]) -> None:
    template = (
        "job {int} ({float}) for {uuid} at {hex} by {email} from {ip}: {quoted} @ {timestamp}"
    )
    expected = template.format(**{kind: f"<{kind}>" for kind in VALUES})
    assert parameterise_message(template.format(**values)) == expected


@given(
    prefix=st.lists(st.sampled_from("ABC"), max_size=3),
    cycle=st.lists(st.sampled_from("pqrs"), min_size=1, max_size=4, unique=True),
    repeats=st.integers(1, 50),
    suffix=st.lists(st.sampled_from("XYZ"), max_size=3),
)
def test_collapsed_recursion_ignores_depth(
    prefix: list[str], cycle: list[str], repeats: int, suffix: list[str]
) -> None:
    deep = collapse_recursion(prefix + cycle * repeats + suffix)
    assert deep == collapse_recursion(prefix + cycle + suffix)


NAMING_WORDS = {"utf", "latin", "iso", "cp", "sha", "md", "base", "int", "uint", "float",
                "complex", "http", "ipv", "x", "arm", "aarch", "py", "python"}  # fmt: skip
SEGMENT = st.from_regex(r"[a-z][a-z0-9_-]{0,7}", fullmatch=True)
PARAMETERS = {
    "path": st.tuples(st.lists(SEGMENT, min_size=1, max_size=5), st.sampled_from(["", ".csv"])).map(
        lambda parts: "/" + "/".join(parts[0]) + parts[1]
    ),
    "id": st.tuples(
        # not the words that name things (utf-8, sha256, int64, py311, ...): those stay
        st.from_regex(r"[a-z]{1,6}", fullmatch=True).filter(lambda p: p not in NAMING_WORDS),
        st.sampled_from(["-", "_", ""]),
        st.integers(10, 10**9),
    ).map(lambda t: f"{t[0]}{t[1]}{t[2]}"),
    "quantity": st.tuples(
        st.one_of(st.integers(0, 10**6).map(str), st.floats(0, 1e6).map(lambda f: f"{f:.2f}")),
        st.sampled_from(["", " "]),
        st.sampled_from(["ms", "s", "seconds", "MB", "GiB", "%", "bytes", "h"]),
    ).map("".join),
    "hex": st.integers(0, 2**64).map(hex),
    "address": st.integers(2**32, 2**48).map(lambda n: f"<Session object at {n:#x}>"),
    "quoted": st.text(st.characters(blacklist_characters="'\n"), max_size=12).map(
        lambda s: f"'{s}'"
    ),
}


@settings(max_examples=300)
@given(values=st.fixed_dictionaries(PARAMETERS))
def test_any_generated_parameters_give_one_fingerprint(values: dict[str, str]) -> None:
    template = "cannot sync {path} for {id} after {quantity} (ref {hex}, {address}, key {quoted})"
    reference = {
        "path": "/var/data/u123/file-9.csv",
        "id": "s-123",
        "quantity": "0.5s",
        "hex": "0x7f3a",
        "address": "<Session object at 0x7f3a2b1c00>",
        "quoted": "'gold'",
    }
    generated = parameterise_message(template.format(**values))
    assert generated == parameterise_message(template.format(**reference))
    assert fingerprint_for([generated]) == fingerprint_for(
        [parameterise_message(template.format(**reference))]
    )
