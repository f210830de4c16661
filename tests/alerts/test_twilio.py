"""SMS through Twilio's Messages API, checked by a local stand-in that validates the
documented request (path, basic auth, form encoding, E.164 numbers, Body length) and answers
with Twilio's own error JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

import obskit
from obskit import ConfigError, diagnostics
from obskit.alerts import AlertEngine, Notification, TwilioSMSChannel
from obskit.alerts.twilio import sms_segments
from obskit.exporters import InMemoryExporter
from obskit.signals import Alert

from .conftest import Clock, fire_and_resolve, sent
from .receivers import HttpReceiver, http_receiver
from .service_receivers import Twilio

ACCOUNT = "AC" + "3f" * 16
TOKEN = "auth-token-0d9c8b7a6f5e4d3c2b1a"
KEY_SID, KEY_SECRET = "SK" + "a1" * 16, "key-secret-55aa66bb77cc"
ONCALL, BACKUP = "+14155550100", "+447700900123"
RUNBOOK = "https://wiki.shop.test/rb/errors"


@pytest.fixture
def twilio() -> Twilio:
    return Twilio(ACCOUNT, {ACCOUNT: TOKEN, KEY_SID: KEY_SECRET})


@pytest.fixture
def receiver(twilio: Twilio) -> Iterator[HttpReceiver]:
    with http_receiver() as running:
        running.handlers["/2010-04-01/"] = twilio
        yield running


def channel(receiver: HttpReceiver, **options: object) -> TwilioSMSChannel:
    options = {"auth_token": TOKEN, "to": [ONCALL, BACKUP], "from_": "+14155550199", **options}
    return TwilioSMSChannel(ACCOUNT, url=receiver.url, **options)  # type: ignore[arg-type]


def test_each_number_gets_one_sms_when_firing_and_one_when_resolved(
    engine: AlertEngine, clock: Clock, receiver: HttpReceiver, twilio: Twilio
) -> None:
    engine.add_channel("sms", channel(receiver))
    fire_and_resolve(
        engine,
        clock,
        "sms",
        annotations={"summary": "{{ labels.name }} fails: {{ value }}", "runbook_url": RUNBOOK},
    )
    assert sent(engine, "sms") == {"sent": 2, "failed": 0, "retried": 0, "dropped": 0}
    assert [(m["To"], m["From"]) for m in twilio.messages] == [
        (ONCALL, "+14155550199"),
        (BACKUP, "+14155550199"),
    ] * 2
    firing, resolved = twilio.messages[0]["Body"], twilio.messages[2]["Body"]
    assert firing == f"[FIRING:1] high_error_rate: POST /checkout fails: 5 {RUNBOOK}"
    assert resolved == f"[RESOLVED:1] high_error_rate: POST /checkout fails: 0 {RUNBOOK}"


def test_an_api_key_and_a_messaging_service_work_too(
    engine: AlertEngine, clock: Clock, receiver: HttpReceiver, twilio: Twilio
) -> None:
    sms = channel(
        receiver,
        auth_token=None,
        api_key_sid=KEY_SID,
        api_key_secret=KEY_SECRET,
        from_=None,
        messaging_service_sid="MG" + "0" * 32,
        to=ONCALL,
        send_resolved=False,
    )
    engine.add_channel("sms", sms)
    fire_and_resolve(engine, clock, "sms")
    assert [m["MessagingServiceSid"] for m in twilio.messages] == ["MG" + "0" * 32]


def test_a_refused_number_is_reported_once_with_twilios_message_and_others_still_get_it(
    engine: AlertEngine,
    clock: Clock,
    receiver: HttpReceiver,
    twilio: Twilio,
    memory: InMemoryExporter,
    capfd: pytest.CaptureFixture[str],
) -> None:
    sms = channel(receiver, to=["+15005550001", ONCALL])
    engine.add_channel("sms", sms)
    fire_and_resolve(engine, clock, "sms")
    assert [m["To"] for m in twilio.messages] == [ONCALL, ONCALL]
    assert sent(engine, "sms") == {"sent": 0, "failed": 2, "retried": 0, "dropped": 0}
    obskit.flush()
    err = capfd.readouterr().err
    (line,) = [line for line in err.splitlines() if "'sms'" in line]
    assert "1 of 2 SMS not sent" in line and "HTTP 400" in line
    assert "Twilio error 21211: The 'To' number +15005550001 is not a valid phone number." in line
    everything = err + repr(sms) + json.dumps(engine.history(), default=str)
    everything += json.dumps([r.to_dict() for r in memory.logs], default=str)
    assert "SMS not sent" in everything
    assert TOKEN not in everything and "Basic " not in everything


def test_wrong_credentials_say_authenticate(
    engine: AlertEngine, clock: Clock, receiver: HttpReceiver, capfd: pytest.CaptureFixture[str]
) -> None:
    engine.add_channel("sms", channel(receiver, auth_token="wrong-token-1234567"))
    fire_and_resolve(engine, clock, "sms")
    assert diagnostics.problem_counts()["alerts.channel_failed.sms"] == 2
    err = capfd.readouterr().err
    assert "HTTP 401" in err and "Twilio error 20003: Authenticate" in err
    assert "wrong-token-1234567" not in err


@pytest.mark.parametrize("status", [429, 503])
def test_a_throttled_message_is_retried_without_texting_anyone_twice(
    engine: AlertEngine, clock: Clock, receiver: HttpReceiver, twilio: Twilio, status: int
) -> None:
    receiver.scripted[f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"] = [status]
    engine.add_channel("sms", channel(receiver, send_resolved=False))
    fire_and_resolve(engine, clock, "sms")
    assert sent(engine, "sms") == {"sent": 1, "failed": 0, "retried": 1, "dropped": 0}
    assert sorted(m["To"] for m in twilio.messages) == sorted([ONCALL, BACKUP])


def test_segments_count_gsm_7_and_ucs_2_as_carriers_do() -> None:
    assert [sms_segments("a" * n) for n in (160, 161, 306, 307)] == [1, 2, 2, 3]
    assert [sms_segments("[" * n) for n in (80, 81)] == [1, 2]  # extension: two septets each
    assert [sms_segments("\u00e9" * n) for n in (160, 161)] == [1, 2]  # é is GSM-7
    assert [sms_segments("\u00ea" * n) for n in (70, 71, 134, 135)] == [1, 2, 2, 3]  # ê is not
    assert sms_segments("\U0001f525" * 35) == 1  # an emoji is two UTF-16 units


@given(
    summary=st.text(max_size=2000),
    runbook=st.sampled_from(["", RUNBOOK, "https://wiki.shop.test/" + "r" * 400]),
    segments=st.integers(1, 10),
)
def test_an_sms_keeps_within_its_segments_and_keeps_a_runbook_that_fits(
    summary: str, runbook: str, segments: int
) -> None:
    sms = TwilioSMSChannel(ACCOUNT, TOKEN, to=ONCALL, from_="Shop", max_segments=segments)
    annotations = {"summary": summary, "runbook_url": runbook}
    alert = Alert(0, "high_error_rate", "firing", "critical", annotations=annotations)
    text = sms.text(Notification("sms", "first", [alert]))
    assert text.startswith("[FIRING:1] high_error_rate")
    assert sms_segments(text) <= segments and 0 < len(text) <= 1600
    if runbook and len(runbook) < 100:
        assert text.endswith(" " + runbook)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"to": ["0044 7700 900123"]}, "E.164"),
        ({"to": []}, "at least one"),
        ({"auth_token": None}, "auth_token"),
        ({"api_key_sid": "SK123"}, "not both"),
        ({"auth_token": None, "api_key_sid": "key", "api_key_secret": "s"}, "'SK'"),
        ({"from_": None}, "from_"),
        ({"from_": "+1 415 555"}, "E.164"),
        ({"messaging_service_sid": "MG1"}, "from_ .* or messaging_service_sid"),
        ({"max_segments": 11}, "at most 10"),
        ({"max_segments": 0}, "max_segments"),
    ],
)
def test_configuration_mistakes_say_what_to_change(
    options: dict[str, object], message: str
) -> None:
    settings = {"auth_token": TOKEN, "to": [ONCALL], "from_": "+14155550199", **options}
    with pytest.raises(ConfigError, match=message):
        TwilioSMSChannel(ACCOUNT, **settings)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Account SID"):
        TwilioSMSChannel("ACbad", TOKEN, to=ONCALL, from_="+14155550199")
