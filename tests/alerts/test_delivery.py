"""From stored anomalies to messages at real receivers: a local HTTP server and aiosmtpd."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from datetime import date, timedelta

import pytest
from alert_builders import NOW, YESTERDAY, add_anomaly, add_days
from sqlalchemy import select

from adsentinel.alerts.config import add_channel
from adsentinel.alerts.service import deliver_alerts, plan_alerts
from adsentinel.db.models import AlertOutbox

SECRET = "s3cret-hook-key"


@pytest.fixture
def webhook(shop, http_receiver, monkeypatch):
    """A generic webhook channel of the shop's account, signing with $ALERT_HOOK_KEY."""
    monkeypatch.setenv("ALERT_HOOK_KEY", SECRET)
    return add_channel(session_factory=shop.session_factory, account_id=shop.account_id,
                       kind="webhook", target=http_receiver.ref, secret_ref="env:ALERT_HOOK_KEY")


def plan(shop, settings, now=NOW):
    return plan_alerts(session_factory=shop.session_factory, settings=settings,
                       account_id=shop.account_id, now=now)


def deliver(shop, settings, now=NOW, **kwargs):
    return deliver_alerts(session_factory=shop.session_factory, settings=settings, now=now,
                          rng=random.Random(0), **kwargs)


def outbox_rows(shop) -> list[AlertOutbox]:
    with shop.session_factory() as session:
        return list(session.scalars(select(AlertOutbox).order_by(AlertOutbox.id)))


def campaign_incident(shop, day, *, severity="high", score=80.0, actual=45.10):
    """A campaign CPL incident on ``day`` with its three ads attached to it."""
    head = add_anomaly(shop, shop.campaign, day, severity=severity, score=score, actual=actual)
    for k, ad in enumerate(shop.ads):
        add_anomaly(shop, ad, day, severity="medium", score=60 + k, actual=30.0 + k,
                    incident_id=head)
    return head


def test_webhook_message_arrives_once_with_everything_a_person_needs(shop, settings, webhook,
                                                                     http_receiver):
    add_days(shop, date(2026, 11, 19), YESTERDAY)
    campaign_incident(shop, date(2026, 11, 18))
    campaign_incident(shop, YESTERDAY)

    assert plan(shop, settings)["enqueued"] == 1
    assert deliver(shop, settings)["sent"] == 1

    [request] = http_receiver.requests
    body = json.loads(request.body)
    expected_signature = "sha256=" + hmac.new(SECRET.encode(), request.body,
                                              hashlib.sha256).hexdigest()
    assert request.headers["X-Adsentinel-Signature"] == expected_signature
    assert request.headers["Idempotency-Key"] == body["idempotency_key"]
    incident = body["incident"]
    assert body["account"]["name"] == "Acme"
    assert incident["entity_path"] == "Black Friday"
    assert incident["metric_label"] == "CPL"
    assert incident["actual_text"] == "R$ 45.10" and incident["expected_text"] == "R$ 14.20"
    assert incident["severity"] == "high"
    assert incident["duration_days"] == 2 and incident["start_day"] == "2026-11-18"
    assert incident["url"] == f"http://127.0.0.1:8000/entities/{shop.campaign}"
    # one message for the campaign, its ads listed worst first, not three more alerts
    assert body["children_total"] == 3
    assert [c["entity_path"] for c in body["children"]] == [
        "Black Friday > Women 25-34 > Video 3", "Black Friday > Women 25-34 > Video 2",
        "Black Friday > Women 25-34 > Video 1"]
    assert "Duration so far: 2 days (since 2026-11-18" in body["text"]
    assert "CPL R$ 45.10 vs R$ 14.20 expected (3.2x)" in body["text"]


def test_email_arrives_with_idempotency_headers(shop, settings, smtp_server):
    settings = settings.model_copy(update={"smtp_port": smtp_server.port,
                                           "smtp_from": "alerts@acme.test"})
    add_channel(session_factory=shop.session_factory, account_id=shop.account_id, kind="email",
                target="ads-team@acme.test")
    campaign_incident(shop, YESTERDAY, severity="critical", score=95)

    plan(shop, settings)
    assert deliver(shop, settings)["sent"] == 1

    [mail] = smtp_server.handler.messages
    key = outbox_rows(shop)[0].idempotency_key
    assert mail["Subject"] == "[CRITICAL] Acme: CPL up on Black Friday (1 day)"
    assert mail["To"] == "ads-team@acme.test" and mail["From"] == "alerts@acme.test"
    assert mail["Message-ID"] == f"<{key}@adsentinel>"
    assert mail["X-Adsentinel-Idempotency-Key"] == key
    text = mail.get_payload(decode=True).decode()
    assert "Campaign: Black Friday" in text
    assert f"Dashboard: http://127.0.0.1:8000/entities/{shop.campaign}" in text
    assert "Worst of 3 affected below it:" in text


def test_slack_body_has_text_and_blocks(shop, settings, http_receiver):
    add_channel(session_factory=shop.session_factory, account_id=shop.account_id, kind="slack",
                target=http_receiver.ref)
    campaign_incident(shop, YESTERDAY)
    plan(shop, settings)
    deliver(shop, settings)
    body = json.loads(http_receiver.requests[0].body)
    assert body["text"].startswith("[HIGH] Acme: CPL up on Black Friday")
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "context"]
    assert "R$ 45.10 vs R$ 14.20" in body["blocks"][1]["text"]["text"]


def test_hourly_replanning_sends_one_alert_then_one_update_then_one_recovery(
        shop, settings, webhook, http_receiver):
    head = campaign_incident(shop, YESTERDAY, severity="medium", score=65)
    for hour in range(5):  # the hourly runs re-store the same anomaly
        add_anomaly(shop, shop.campaign, YESTERDAY, severity="medium", score=65 + hour)
        plan(shop, settings, NOW + timedelta(hours=hour))
        deliver(shop, settings, NOW + timedelta(hours=hour))
    assert [json.loads(r.body)["kind"] for r in http_receiver.requests] == ["opened"]

    # it worsens to critical: one update, however many runs see it
    for hour in range(5, 8):
        add_anomaly(shop, shop.campaign, YESTERDAY, severity="critical", score=95,
                    incident_id=None)
        plan(shop, settings, NOW + timedelta(hours=hour))
        deliver(shop, settings, NOW + timedelta(hours=hour))
    kinds = [json.loads(r.body)["kind"] for r in http_receiver.requests]
    assert kinds == ["opened", "update"]
    assert json.loads(http_receiver.requests[1].body)["incident"]["severity"] == "critical"

    # the next complete day is normal (no anomaly that day): one recovery notice
    add_days(shop, date(2026, 11, 20), date(2026, 11, 20))
    tomorrow = NOW + timedelta(days=1)
    for hour in range(3):
        plan(shop, settings, tomorrow + timedelta(hours=hour))
        deliver(shop, settings, tomorrow + timedelta(hours=hour))
    bodies = [json.loads(r.body) for r in http_receiver.requests]
    assert [b["kind"] for b in bodies] == ["opened", "update", "recovered"]
    assert bodies[2]["reason"] == "back to normal"
    assert bodies[2]["incident"]["start_day"] == YESTERDAY.isoformat()
    assert len({r.headers["Idempotency-Key"] for r in http_receiver.requests}) == 3
    assert head


def test_persisting_incident_is_still_one_alert_across_days(shop, settings, webhook,
                                                            http_receiver):
    campaign_incident(shop, date(2026, 11, 18))
    plan(shop, settings)
    deliver(shop, settings)
    add_days(shop, YESTERDAY, YESTERDAY)
    campaign_incident(shop, YESTERDAY)  # the next day: still anomalous, same severity
    plan(shop, settings, NOW + timedelta(hours=20))
    deliver(shop, settings, NOW + timedelta(hours=20))
    assert len(http_receiver.requests) == 1


def test_retracted_incident_gets_a_recovery_notice(shop, settings, webhook, http_receiver):
    head = campaign_incident(shop, YESTERDAY)
    plan(shop, settings)
    deliver(shop, settings)
    with shop.session_factory() as session:  # restated data made it normal: detection retracts
        from adsentinel.db.models import Anomaly
        for row in session.scalars(select(Anomaly)):
            row.status = "retracted"
            row.incident_id = None
        session.commit()
    plan(shop, settings, NOW + timedelta(hours=1))
    deliver(shop, settings, NOW + timedelta(hours=1))
    bodies = [json.loads(r.body) for r in http_receiver.requests]
    assert [b["kind"] for b in bodies] == ["opened", "recovered"]
    assert bodies[1]["reason"] == "restated data is normal"
    assert head


def test_receiver_failing_twice_then_succeeding_gets_exactly_one_delivery(
        shop, settings, webhook, http_receiver):
    http_receiver.fail_next = 2
    campaign_incident(shop, YESTERDAY)
    plan(shop, settings)

    assert deliver(shop, settings)["retrying"] == 1
    [row] = outbox_rows(shop)
    first_wait = row.next_attempt_at.replace(tzinfo=NOW.tzinfo) - NOW
    assert timedelta(seconds=30) <= first_wait <= timedelta(seconds=37.5)
    assert deliver(shop, settings)["sent"] == 0  # not due yet: nothing is sent early

    later = NOW + timedelta(seconds=40)
    assert deliver(shop, settings, later)["retrying"] == 1
    [row] = outbox_rows(shop)
    second_wait = row.next_attempt_at.replace(tzinfo=NOW.tzinfo) - later
    assert timedelta(seconds=60) <= second_wait <= timedelta(seconds=75)  # backoff doubles

    assert deliver(shop, settings, later + timedelta(minutes=5))["sent"] == 1
    assert deliver(shop, settings, later + timedelta(hours=5))["sent"] == 0
    assert len(http_receiver.requests) == 3 and len(http_receiver.accepted) == 1
    [row] = outbox_rows(shop)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)


def test_gives_up_after_alert_max_attempts(shop, settings, webhook, http_receiver):
    settings = settings.model_copy(update={"alert_max_attempts": 3})
    http_receiver.fail_next = 100
    campaign_incident(shop, YESTERDAY)
    plan(shop, settings)
    moment = NOW
    outcomes = []
    for _ in range(5):
        outcomes.append(deliver(shop, settings, moment))
        moment += timedelta(hours=2)
    assert [o["retrying"] for o in outcomes] == [1, 1, 0, 0, 0]
    assert [o["failed"] for o in outcomes] == [0, 0, 1, 0, 0]
    [row] = outbox_rows(shop)
    assert row.status == "failed" and row.attempts == 3 and "HTTP 503" in row.last_error


def test_quiet_hours_hold_messages_until_the_window_ends(shop, settings, http_receiver):
    add_channel(session_factory=shop.session_factory, account_id=shop.account_id, kind="slack",
                target=http_receiver.ref, quiet_start="22:00", quiet_end="07:00")
    campaign_incident(shop, YESTERDAY)
    night = NOW.replace(hour=23, minute=30)
    plan(shop, settings, night)
    assert deliver(shop, settings, night)["sent"] == 0
    assert deliver(shop, settings, night.replace(hour=23, minute=59))["sent"] == 0
    morning = (night + timedelta(days=1)).replace(hour=6, minute=59)
    assert deliver(shop, settings, morning)["sent"] == 0
    assert deliver(shop, settings, morning.replace(hour=7, minute=0))["sent"] == 1
    assert len(http_receiver.requests) == 1


def test_metrics_of_one_entity_moving_together_are_one_message(shop, settings, webhook,
                                                               http_receiver):
    ad = shop.ads[0]
    add_anomaly(shop, ad, YESTERDAY, metric="cpl", severity="high", score=85)
    add_anomaly(shop, ad, YESTERDAY, metric="leads", direction="down", severity="critical",
                score=96, actual=0.0, expected=21.0)
    add_anomaly(shop, ad, YESTERDAY, metric="conversion_rate", direction="down",
                severity="medium", score=64, actual=0.0, expected=0.1)
    for hour in range(3):
        plan(shop, settings, NOW + timedelta(hours=hour))
        deliver(shop, settings, NOW + timedelta(hours=hour))
    [request] = http_receiver.requests
    body = json.loads(request.body)
    assert body["subject"] == ("[CRITICAL] Acme: Leads down (+2 more metrics) on "
                               "Black Friday > Women 25-34 > Video 1 (1 day)")
    assert [a["metric"] for a in body["also"]] == ["cpl", "conversion_rate"]
    assert "Also: CPL up R$ 45.10 vs R$ 14.20 expected (3.2x), high, since 2026-11-19" in body["text"]

    add_days(shop, date(2026, 11, 19), date(2026, 11, 20))  # a normal day: recovered, once
    for hour in range(2):
        plan(shop, settings, NOW + timedelta(days=1, hours=hour))
        deliver(shop, settings, NOW + timedelta(days=1, hours=hour))
    assert [json.loads(r.body)["kind"] for r in http_receiver.requests] == ["opened", "recovered"]
    assert len(json.loads(http_receiver.requests[1].body)["also"]) == 2


def test_a_message_that_cannot_be_rendered_fails_alone(shop, settings, webhook, http_receiver):
    campaign_incident(shop, YESTERDAY)
    add_anomaly(shop, shop.ads[0], YESTERDAY, metric="ctr", direction="down", severity="high",
                actual=0.004, expected=0.02)
    plan(shop, settings)
    with shop.session_factory() as session:  # a row written by an older, incompatible version
        broken = session.scalars(select(AlertOutbox).order_by(AlertOutbox.id)).first()
        broken.payload = {"kind": "opened"}
        session.commit()
    result = deliver(shop, settings)
    assert (result["sent"], result["retrying"]) == (1, 1)
    assert "KeyError" in outbox_rows(shop)[0].last_error
