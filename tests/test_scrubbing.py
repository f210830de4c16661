"""Scrubbing: generated secrets never survive in any exported form of an event or log record."""

from __future__ import annotations

import copy
import json
import pickle
import random
import string
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import obskit
from obskit.exporters import InMemoryExporter
from obskit.exporters._render import json_line, pretty_line
from obskit.scrubbing import (
    _VALUE_PATTERN,
    FILTERED,
    ScrubbedMapping,
    ScrubbedSequence,
    Scrubber,
)
from obskit.signals import LogRecord

ALNUM = string.ascii_letters + string.digits


def token(min_size: int = 12, max_size: int = 32) -> st.SearchStrategy[str]:
    """A distinctive random token (it cannot appear in an event by accident)."""
    return st.text(ALNUM, min_size=min_size, max_size=max_size).map(lambda t: "Zq" + t)


def luhn_complete(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits + "0")):
        number = int(char)
        if index % 2:
            number = number * 2 - 9 if number > 4 else number * 2
        total += number
    return digits + str((10 - total % 10) % 10)


@st.composite
def card_number(draw: st.DrawFn) -> tuple[str, list[str]]:
    digits = luhn_complete(
        draw(st.sampled_from("3456")) + draw(st.text("0123456789", min_size=14, max_size=14))
    )
    separator = draw(st.sampled_from(["", " ", "-"]))
    grouped = separator.join(digits[i : i + 4] for i in range(0, 16, 4))
    return grouped, [digits, grouped]


def jwt() -> st.SearchStrategy[tuple[str, list[str]]]:
    part = st.text(ALNUM + "-_", min_size=8, max_size=40)
    return st.tuples(part, part, part).map(
        lambda p: (f"eyJ{p[0]}.eyJ{p[1]}.{p[2]}", [f"eyJ{p[0]}.eyJ{p[1]}.{p[2]}"])
    )


SECRET_KEYS = ["password", "db_password", "API_KEY", "client-secret", "auth", "sessionid", "Token"]
SCHEMES = ["Bearer ", "Basic ", "token ", ""]

SECRETS = st.one_of(
    token().map(lambda t: (f"Bearer {t}", [t])),
    st.tuples(
        st.sampled_from(SECRET_KEYS),
        st.sampled_from([": ", "=", " = ", '": "']),
        st.sampled_from(SCHEMES),
        token(),
    ).map(lambda p: (f"{p[0]}{p[1]}{p[2]}{p[3]}", [p[3]])),
    st.tuples(st.sampled_from(SECRET_KEYS), token(), token(4, 8)).map(
        lambda p: (f"{p[0]}='{p[1]} {p[2]}'", [p[1], p[2]])
    ),
    jwt(),
    st.text(string.ascii_uppercase + string.digits, min_size=16, max_size=16).map(
        lambda t: (f"AKIA{t}", [f"AKIA{t}"])
    ),
    card_number(),
    st.tuples(st.from_regex(r"[a-z]{3,10}", fullmatch=True), token(4, 10)).map(
        lambda p: (f"{p[0]}.{p[1]}@mail.example.org", [f"{p[0]}.{p[1]}@mail.example.org"])
    ),
    st.tuples(token(4, 10), token()).map(
        lambda p: (f"https://{p[0]}:{p[1]}@db.internal:5432/app", [p[1]])
    ),
    token(40, 80).map(
        lambda t: (
            f"-----BEGIN RSA PRIVATE KEY-----\n{t}\n-----END RSA PRIVATE KEY-----",
            [t],
        )
    ),
)
AROUND = st.sampled_from(["", " ", "\n", "(", "[", ", ", " at "])
DENIED_KEYS = st.sampled_from(
    ["password", "X-Api-Key", "Authorization", "session_id", "Set-Cookie", "credit card", "apikey"]
)


@st.composite
def nested(draw: st.DrawFn, value: Any) -> Any:
    """``value`` buried in dicts, lists and tuples, up to 15 levels deep."""
    for _ in range(draw(st.integers(0, 15))):
        kind = draw(st.sampled_from(["dict", "list", "tuple"]))
        if kind == "dict":
            value = {draw(st.sampled_from(["data", "items", "x", "meta"])): value, "n": 1}
        elif kind == "list":
            value = [1, value]
        else:
            value = ("a", value)
    return value


def capture_crash(text: str, password: str, tags: dict[str, str]) -> None:
    """Raise and capture with ``text`` in the message, the locals, the tags and the user.

    Its locals hold secrets only in patterns, under denied names or under denied keys.
    """
    try:
        crash_with(text)
    except ValueError:
        obskit.capture_exception(tags=tags, user={"id": 1, "email": text})


def crash_with(text: str) -> None:
    raise ValueError(f"charge failed: {text}")


def exported_forms(memory: InMemoryExporter) -> list[str]:
    obskit.flush()
    forms = []
    for record in memory.records:
        forms.append(json.dumps(record.to_dict(), default=str))
        forms.append(json_line(record))
        forms.append(pretty_line(record, colors=False))
    return forms


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    secret=SECRETS,
    before=AROUND,
    after=AROUND,
    key=DENIED_KEYS,
    raw=token(),
    depth_a=st.data(),
)
def test_no_generated_secret_survives_in_any_exported_form(
    secret: tuple[str, list[str]],
    before: str,
    after: str,
    key: str,
    raw: str,
    depth_a: st.DataObject,
) -> None:
    obskit.shutdown()  # a fresh trail and fresh groups for each example
    memory = InMemoryExporter()
    obskit.init(exporters=[memory], level="debug", include_locals=True, install_hooks=False)
    text, fragments = secret
    assume(raw not in text and not any(raw in fragment for fragment in fragments))
    text = f"{before}{text}{after}"
    log = obskit.get_logger("app")
    with obskit.context(note=text, **{key: raw}):
        log.info(f"paying with {text}", payload=depth_a.draw(nested(text)), **{key: raw})
        log.warning("nested", payload=depth_a.draw(nested({key: raw, "t": text})))
        try:
            crash_with(text)
        except ValueError:
            log.exception("charge failed")
        obskit.add_breadcrumb("http", f"POST {text}", data={"body": text, key: raw})
        capture_crash(text, raw, {"note": text, key: raw})
        obskit.capture_message(f"could not pay: {text}", level="warning")
    forms = exported_forms(memory)
    assert len(memory.errors) == 2 and len(memory.logs) == 3, [r.event for r in memory.logs]
    for form in forms:
        for fragment in [*fragments, raw]:
            at = form.find(fragment)
            assert at < 0, (fragment, form[max(0, at - 700) : at + 40])
    groups = " ".join(f"{g.title} {g.culprit}" for g in obskit.errors.groups())
    assert all(fragment not in groups for fragment in fragments)


# -- the pre-check that skips the full pattern never changes a result ----------------------


def reference_clean(text: str, scrubber: Scrubber) -> str:
    return _VALUE_PATTERN.sub(scrubber._replace, text)


TRICKY = st.sampled_from(
    [
        "password",
        "PassWord",
        "pwd",
        "Token",
        "Bearer ",
        "basic ",
        "eyJ",
        "AKIA",
        "@",
        "://",
        "-----BEGIN PRIVATE KEY-----",
        "=",
        ": ",
        "'",
        '"',
        "4111 1111 1111 1111",
        "\u017fecret",  # long s: folds to "s" when matching case-insensitively
        "\u212aey",
        "session-id",
        "cookie",
        "api_key",
        " ",
        "\n",
        "1234567890123",
    ]
)


@given(st.lists(st.one_of(TRICKY, st.text(max_size=8)), max_size=12).map("".join))
def test_the_quick_pre_check_never_changes_what_is_scrubbed(text: str) -> None:
    scrubber = Scrubber(max_string_length=100_000)
    assert scrubber.clean_text(text) == reference_clean(text, scrubber)


# -- examples --------------------------------------------------------------------------------


def test_denied_keys_are_filtered_at_any_depth_and_in_any_container() -> None:
    value: Any = {"Authorization": "Bearer x"}
    for layer in range(10):
        value = [value] if layer % 3 == 0 else (value,) if layer % 3 == 1 else {"k": value}
    cleaned = Scrubber().clean_value({"outer": value})
    assert "Bearer x" not in json.dumps(cleaned) and FILTERED in json.dumps(cleaned)


def test_auth_headers_with_a_scheme_and_quoted_values_are_filtered_whole() -> None:
    scrubber = Scrubber()
    assert scrubber.clean_text("Authorization: Bearer abcdefgh1234") == "Authorization: [Filtered]"
    assert scrubber.clean_text("secret='two words'") == "secret='[Filtered]'"
    assert scrubber.clean_text('{"password": "a b"}') == '{"password": "[Filtered]"}'
    assert scrubber.clean_text("Credit Card: 4111") == "Credit Card: [Filtered]"
    assert scrubber.clean_text('sessionid": "abc') == 'sessionid": "[Filtered]'  # unterminated


def test_deny_and_allow_lists_are_configurable() -> None:
    scrubber = Scrubber(scrub_keys=["pin"], scrub_allow_keys=["token_count"])
    cleaned = scrubber.clean_mapping({"pin": 1234, "token_count": 7, "token": "t"})
    assert cleaned == {"pin": FILTERED, "token_count": 7, "token": FILTERED}


def test_emails_are_kept_when_default_pii_may_be_sent() -> None:
    assert Scrubber(send_default_pii=True).clean_text("to ann@example.com") == "to ann@example.com"
    assert Scrubber().clean_text("to ann@example.com") == "to [Filtered]"


def test_a_secret_across_the_truncation_point_does_not_half_survive() -> None:
    scrubber = Scrubber(max_string_length=100)
    text = "x" * 90 + " 4111 1111 1111 1111 and more"
    cleaned = scrubber.clean_text(text)
    assert "4111" not in cleaned and "[truncated" in cleaned


def test_frozen_data_is_read_only_shared_and_not_cleaned_twice() -> None:
    scrubber = Scrubber()
    frozen = scrubber.freeze({"message": "login", "data": {"token": "t", "ids": [1, 2]}})
    assert isinstance(frozen, ScrubbedMapping) and isinstance(
        frozen["data"]["ids"], ScrubbedSequence
    )
    assert scrubber.clean_value(frozen) is frozen
    with pytest.raises(TypeError):
        frozen["message"] = "changed"
    with pytest.raises(TypeError):
        frozen.update(message="changed")
    assert type(copy.deepcopy(frozen)) is dict and type(pickle.loads(pickle.dumps(frozen))) is dict
    stricter = Scrubber(scrub_keys=["message"])
    assert stricter.clean_value(frozen)["message"] == FILTERED  # another scrubber cleans again


def test_scrubbing_a_long_random_text_is_fast_enough_to_stay_on_the_hot_path() -> None:
    rng = random.Random(7)
    text = " ".join("".join(rng.choices(string.ascii_lowercase, k=8)) for _ in range(200))
    scrubber = Scrubber()
    assert scrubber.clean_text(text) == text


# -- properties of the walk itself: depth, containers, ordinary text ----------------------------

SECRET_KEYS = [
    "password",
    "X-Api-Key",
    "db_password",
    "Authorization",
    "session_id",
    "refresh_token",
    "client_secret",
    "Cookie",
    "private_key",
    "creditCard",
]
# Disjoint from the filler's alphabet below, so the filler can never spell a secret by chance.
secret_values = st.text(alphabet="qrstuvwxyz0123456789", min_size=12, max_size=30)
plain_keys = st.sampled_from(["user", "items", "route", "region", "data", "payload"])


def _nest(value: Any, path: list[str]) -> Any:
    for key in reversed(path):
        value = {key: value} if key != "#list" else [value, "x"]
    return value


@given(
    secret=secret_values,
    key=st.sampled_from(SECRET_KEYS),
    path=st.lists(st.one_of(plain_keys, st.just("#list")), max_size=6),
)
def test_secret_under_denied_key_never_survives_at_any_depth(
    secret: str, key: str, path: list[str]
) -> None:
    fields = {"outer": _nest({key: secret, "ok": "visible"}, path)}
    record = LogRecord(timestamp=time.time(), level="info", event="e", fields=fields)
    record.scrub(Scrubber())
    line = json_line(record)
    assert secret not in line
    assert "visible" in line


embedded_secrets = st.one_of(
    secret_values.map(lambda s: (f"Bearer {s}", s)),
    secret_values.map(lambda s: (f"password={s}", s)),
    secret_values.map(lambda s: (f"api_key: {s}", s)),
    secret_values.map(lambda s: (f"https://user:{s}@db.internal/x", s)),
    st.just(("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE")),
    st.just(("4111 1111 1111 1111", "4111 1111 1111 1111")),
    st.just(("5500-0000-0000-0004", "5500-0000-0000-0004")),
    st.just(("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl", "c2lnbmF0dXJl")),
    st.just(("ann.smith@example.com", "ann.smith@example.com")),
)
filler = st.text(alphabet="abcdefghij klmnop,.", max_size=40)


@given(before=filler, secret=embedded_secrets, after=filler)
def test_secret_patterns_inside_strings_never_survive(
    before: str, secret: tuple[str, str], after: str
) -> None:
    text, needle = secret
    message = f"{before} {text} {after}"
    record = LogRecord(
        timestamp=time.time(), level="info", event=message, fields={"note": [message]}
    )
    record.scrub(Scrubber())
    assert needle not in json_line(record)


def test_ordinary_text_and_numbers_pass_unchanged() -> None:
    scrubber = Scrubber()
    for text in ["GET /orders/12345 took 45 ms", "status=200 route=/pay", "version 1.2.3"]:
        assert scrubber.clean_text(text) == text
    assert scrubber.clean_text("order 1234567890123 shipped") == "order 1234567890123 shipped"


def test_email_kept_when_pii_allowed_and_allow_list_wins() -> None:
    scrubber = Scrubber(send_default_pii=True, scrub_allow_keys=["session"])
    assert scrubber.clean_text("mail ann@example.com") == "mail ann@example.com"
    assert scrubber.clean_mapping({"session": "abc", "token": "t"}) == {
        "session": "abc",
        "token": FILTERED,
    }


def test_disabled_scrubber_still_sanitises() -> None:
    scrubber = Scrubber(scrub=False)
    out = scrubber.clean_value({"password": "p", "n": float("inf"), b"k": b"v"})
    assert out == {"password": "p", "n": "Infinity", "b'k'": "v"}
    assert json.dumps(out)
