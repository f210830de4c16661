"""Teams, SMS and Opsgenie show what a notification carries beyond its alerts: the outcome of
the rule's actions and the running release (error groups and traces come the same way)."""

from __future__ import annotations

from collections.abc import Callable

import obskit
from obskit.alerts import AlertEngine, OpsgenieChannel, TeamsChannel, TwilioSMSChannel
from obskit.signals import Alert

from .conftest import Clock, fire_and_resolve
from .receivers import http_receiver
from .service_receivers import Opsgenie, Twilio, teams

ACCOUNT, TOKEN, KEY = "AC" + "0" * 32, "t0ken-t0ken", "eb243592-faa2-4ba2-a551-1afdf565c889"


def restart_worker(alert: Alert) -> None:
    """An on_fire action that succeeds."""


def flush_cache(alert: Alert) -> None:
    """An on_resolve action that succeeds."""


def test_action_outcomes_and_release_reach_teams_sms_and_opsgenie(
    make_engine: Callable[..., AlertEngine], clock: Clock
) -> None:
    obskit.init(service="shop", release="1.4.2", exporters=["memory"])
    twilio, genie = Twilio(ACCOUNT, {ACCOUNT: TOKEN}), Opsgenie(KEY)
    with http_receiver() as receiver:
        receiver.handlers.update({"/teams": teams, "/2010-04-01/": twilio, "/v2/alerts": genie})
        engine = make_engine()
        engine.add_channel("teams", TeamsChannel(receiver.url + "/teams"))
        sms = TwilioSMSChannel(
            ACCOUNT, TOKEN, to="+14155550100", from_="+14155550199", url=receiver.url
        )
        engine.add_channel("sms", sms)
        engine.add_channel("genie", OpsgenieChannel(KEY, url=receiver.url))
        fire_and_resolve(engine, clock, "teams", on_fire=restart_worker, on_resolve=flush_cache)
        engine.add_rule(
            name="slow",
            metric="latency",
            aggregation="last",
            threshold=1,
            channels=["sms", "genie"],
            on_fire=restart_worker,
            on_resolve=flush_cache,
        )
        engine.observe("latency", 5.0)
        engine.evaluate()
        assert engine.flush(30)
        clock.advance(60)
        engine.observe("latency", 0.0)
        engine.evaluate()
        assert engine.flush(30)
        cards = [r.body for r in receiver.received if r.path == "/teams"]
    firing_card = cards[0]["attachments"][0]["content"]
    context = [item["text"] for item in firing_card["body"][-1]["items"]]
    assert context[0].startswith("on_fire restart_worker: ok")
    assert "Release: 1.4.2" in context
    resolved_card = cards[1]["attachments"][0]["content"]
    assert any(
        item["text"].startswith("on_resolve flush_cache: ok")
        for item in resolved_card["body"][-1]["items"]
    )
    firing_sms = twilio.messages[0]["Body"]
    assert firing_sms.startswith("[FIRING:1] slow: 5 | on_fire restart_worker: ok")
    (create,) = [body for action, _, body in genie.requests if action == "create"]
    assert create["details"]["release"] == "1.4.2"
    assert "on_fire restart_worker: ok" in create["description"]
    assert "Release: 1.4.2" in create["description"]
    (close,) = [body for action, _, body in genie.requests if action == "close"]
    assert "on_resolve flush_cache: ok" in close["note"]
