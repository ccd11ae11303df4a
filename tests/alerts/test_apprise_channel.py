"""The apprise channel kind, delivered through the outbox to a local HTTP receiver that apprise
reaches through its own `json://` URL (as it would reach Teams, Telegram or PagerDuty)."""

from __future__ import annotations

import json
import random
from datetime import date

import pytest
from alert_builders import NOW, YESTERDAY, add_anomaly, add_days

from adsentinel.alerts.channels import ChannelView, DeliveryError, send_message
from adsentinel.alerts.config import AlertConfigError, add_channel
from adsentinel.alerts.service import deliver_alerts, plan_alerts


@pytest.fixture
def apprise_ref(http_receiver, monkeypatch) -> str:
    """``env:ALERT_APPRISE_URL`` holding ``json://127.0.0.1:PORT/hook``: the receiver."""
    monkeypatch.setenv("ALERT_APPRISE_URL",
                       http_receiver.url.replace("http://", "json://", 1))
    return "env:ALERT_APPRISE_URL"


def test_an_alert_reaches_the_receiver_through_apprise(shop, settings, http_receiver,
                                                       apprise_ref):
    add_channel(session_factory=shop.session_factory, account_id=shop.account_id,
                kind="apprise", target=apprise_ref)
    add_days(shop, date(2026, 11, 19), YESTERDAY)
    add_anomaly(shop, shop.campaign, YESTERDAY, severity="high", score=80, actual=45.10)

    assert plan_alerts(session_factory=shop.session_factory, settings=settings,
                       account_id=shop.account_id, now=NOW)["enqueued"] == 1
    done = deliver_alerts(session_factory=shop.session_factory, settings=settings, now=NOW,
                          rng=random.Random(0))
    assert done["sent"] == 1

    [request] = http_receiver.requests
    assert request.path == "/hook"
    body = json.loads(request.body)
    assert body["title"] == "[HIGH] Acme: CPL up on Black Friday (1 day)"
    assert "CPL R$ 45.10 vs R$ 14.20 expected" in body["message"]
    assert body["message"].splitlines()[0] == "Account: Acme"  # the subject is the title only


def test_a_refusing_service_is_a_failed_delivery_with_the_url_masked(shop, settings,
                                                                    http_receiver, apprise_ref):
    http_receiver.fail_next = 1
    channel = ChannelView(1, "apprise", apprise_ref)
    payload = {"kind": "test", "account": {"name": "Acme"}, "text": "hello",
               "url": "http://127.0.0.1:8000/"}
    with pytest.raises(DeliveryError) as failed:
        send_message(channel, payload, "key-1", settings, timeout=5)
    assert "json://127.0.0.1" in str(failed.value) and "/hook" not in str(failed.value)
    send_message(channel, payload, "key-2", settings, timeout=5)  # the next one is accepted
    assert [r.status for r in http_receiver.requests] == [503, 200]


def test_an_url_apprise_does_not_know_is_refused_clearly(settings, monkeypatch):
    monkeypatch.setenv("ALERT_BAD_URL", "nosuchservice://token@host/secret-path")
    payload = {"kind": "test", "account": {"name": "Acme"}, "text": "hi", "url": "x"}
    with pytest.raises(DeliveryError, match="apprise does not understand the URL "
                                            r"nosuchservice://host/\*\*\*"):
        send_message(ChannelView(3, "apprise", "env:ALERT_BAD_URL"), payload, "k", settings)


def test_an_apprise_url_is_never_stored_in_clear(shop):
    with pytest.raises(AlertConfigError, match="is a secret and is not stored in clear"):
        add_channel(session_factory=shop.session_factory, account_id=shop.account_id,
                    kind="apprise", target="tgram://bottoken/chatid")
