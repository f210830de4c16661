"""Scrubbing: no generated secret survives in any exported form; ordinary text is untouched."""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from obskit.exporters._render import json_line
from obskit.scrubbing import FILTERED, Scrubber
from obskit.signals import LogRecord

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


def nest(value: Any, path: list[str]) -> Any:
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
    fields = {"outer": nest({key: secret, "ok": "visible"}, path)}
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
    scrubber = Scrubber(send_default_pii=True, allow_keys=["session"])
    assert scrubber.clean_text("mail ann@example.com") == "mail ann@example.com"
    assert scrubber.clean_mapping({"session": "abc", "token": "t"}) == {
        "session": "abc",
        "token": FILTERED,
    }


def test_disabled_scrubber_still_sanitises() -> None:
    scrubber = Scrubber(enabled=False)
    out = scrubber.clean_value({"password": "p", "n": float("inf"), b"k": b"v"})
    assert out == {"password": "p", "n": "Infinity", "b'k'": "v"}
    assert json.dumps(out)
