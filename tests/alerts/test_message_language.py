"""Alerts in the account's language: an account set to pt_BR gets Portuguese words, Brazilian
money and dates in its email, Slack and webhook messages; the webhook's keys stay the same in
every language; an account without a language follows the ``locale`` setting."""

from __future__ import annotations

import json
import random
from datetime import date

from alert_builders import NOW, YESTERDAY, add_anomaly, add_days
from sqlalchemy import update

from adsentinel.alerts.config import add_channel
from adsentinel.alerts.incidents import RECOVERED, AnomalyFact, PlannedMessage, build_incidents
from adsentinel.alerts.messages import (
    MessageContext,
    digest_payload,
    incident_payload,
    render_slack,
    render_text,
    render_webhook,
    subject_of,
)
from adsentinel.alerts.service import deliver_alerts, plan_alerts
from adsentinel.db.engine import session_scope
from adsentinel.db.models import AdAccount


def set_locale(shop, locale):
    with session_scope(shop.session_factory) as session:
        session.execute(update(AdAccount).where(AdAccount.id == shop.account_id)
                        .values(locale=locale))


def webhook_body(shop, settings, http_receiver, monkeypatch):
    monkeypatch.setenv("ALERT_HOOK_KEY", "k")
    add_channel(session_factory=shop.session_factory, account_id=shop.account_id,
                kind="webhook", target=http_receiver.ref, secret_ref="env:ALERT_HOOK_KEY")
    add_days(shop, date(2026, 11, 19), YESTERDAY)
    head = add_anomaly(shop, shop.campaign, date(2026, 11, 18), actual=1564.97, expected=14.20)
    add_anomaly(shop, shop.campaign, YESTERDAY, actual=1564.97, expected=14.20)
    for k, ad in enumerate(shop.ads):
        add_anomaly(shop, ad, YESTERDAY, severity="medium", score=60 + k, actual=30.5 + k,
                    incident_id=head)
    plan_alerts(session_factory=shop.session_factory, settings=settings,
                account_id=shop.account_id, now=NOW)
    deliver_alerts(session_factory=shop.session_factory, settings=settings, now=NOW,
                   rng=random.Random(0))
    [request] = http_receiver.requests
    return json.loads(request.body)


def test_a_pt_br_account_gets_its_webhook_text_in_portuguese_with_brazilian_formats(
        shop, settings, http_receiver, monkeypatch):
    set_locale(shop, "pt_BR")
    body = webhook_body(shop, settings, http_receiver, monkeypatch)
    incident = body["incident"]
    assert body["account"]["locale"] == "pt_BR"
    assert incident["actual_text"] == "R$ 1.564,97" and incident["expected_text"] == "R$ 14,20"
    assert incident["ratio_text"] == "110,2x"
    assert incident["start_day"] == "2026-11-18"  # machine-readable values stay ISO
    assert body["subject"] == "[ALTA] Acme: CPL em alta em Black Friday (2 dias)"
    text = body["text"]
    assert "Campanha: Black Friday" in text
    assert "Métrica: CPL R$ 1.564,97 vs. R$ 14,20 esperado (110,2x)" in text
    assert "Duração até agora: 2 dias (desde 18/11/2026, último 19/11/2026)" in text
    assert "Os piores dos 3 itens afetados abaixo:" in text
    assert "Gravidade: alta (pontuação 80,0)" in text
    # the detector's own sentence (Detalhe) is still English; every other line is Portuguese
    told = "\n".join(line for line in text.splitlines() if not line.startswith("Detalhe:"))
    assert "Severity" not in told and "expected" not in told and "since" not in told


def test_the_webhook_keys_are_the_same_in_every_language():
    def keys(value, prefix=""):
        if isinstance(value, dict):
            return {f"{prefix}{k}" for k in value} | {
                key for k, v in value.items() for key in keys(v, f"{prefix}{k}.")}
        if isinstance(value, list) and value:
            return keys(value[0], prefix + "[].")
        return set()

    documents = {}
    for locale in ("en", "pt_BR"):
        payload = incident_payload(planned(), context(locale), today=date(2026, 11, 20))
        documents[locale] = json.loads(render_webhook(payload, "k" * 64))
    assert keys(documents["en"]) == keys(documents["pt_BR"])
    assert documents["en"]["incident"]["metric"] == documents["pt_BR"]["incident"]["metric"]
    assert documents["en"]["text"] != documents["pt_BR"]["text"]


def test_an_account_without_a_language_follows_the_locale_setting(shop, settings,
                                                                  http_receiver, monkeypatch):
    settings = settings.model_copy(update={"locale": "pt_BR"})
    body = webhook_body(shop, settings, http_receiver, monkeypatch)
    assert body["subject"].startswith("[ALTA] Acme:")


def test_an_english_account_is_unchanged_by_a_portuguese_setting(shop, settings, http_receiver,
                                                                 monkeypatch):
    set_locale(shop, "en")
    settings = settings.model_copy(update={"locale": "pt_BR"})
    body = webhook_body(shop, settings, http_receiver, monkeypatch)
    assert body["subject"] == "[HIGH] Acme: CPL up on Black Friday (2 days)"
    assert "CPL R$ 1,564.97 vs R$ 14.20 expected (110.2x)" in body["text"]


# --- pure rendering --------------------------------------------------------------------------


def context(locale: str) -> MessageContext:
    return MessageContext(account_id=1, account_name="Loja <Azul>", currency="BRL",
                          paths={7: "Black Friday > Mulheres 25-34"}, levels={7: "adset"},
                          public_url="https://ads.example.com", locale=locale)


def fact(**changes) -> AnomalyFact:
    values = dict(id=3, entity_id=7, day=date(2026, 11, 19), metric="ctr", direction="down",
                  severity="critical", score=91.0, actual=0.004, expected=0.0125,
                  status="open", incident_id=None, message="CTR 0.40% vs 1.25% expected")
    return AnomalyFact(**{**values, **changes})


def planned(kind: str = "opened") -> PlannedMessage:
    """A two-day critical CTR drop of the ad set."""
    [incident] = build_incidents([fact(id=2, day=date(2026, 11, 18)), fact()])
    return PlannedMessage(kind, incident.key, incident, incident.severity)


def test_slack_and_email_text_in_portuguese():
    payload = incident_payload(planned(), context("pt_BR"), today=date(2026, 11, 20))
    assert subject_of(payload) == ("[CRÍTICA] Loja <Azul>: CTR em queda em Black Friday > "
                                   "Mulheres 25-34 (2 dias)")
    text = render_text(payload)
    assert "Conjunto de anúncios: Black Friday > Mulheres 25-34" in text
    assert "Métrica: CTR 0,40% vs. 1,25% esperado (-68%)" in text
    assert "Painel: https://ads.example.com/entities/7" in text
    slack = render_slack(payload, "k" * 64)
    assert slack["text"].startswith("[CRÍTICA] Loja &lt;Azul&gt;: CTR em queda")


def test_recovery_and_digest_in_portuguese():
    recovered = incident_payload(planned(), context("pt_BR"), today=date(2026, 11, 20))
    recovered.update(kind=RECOVERED, reason="back to normal")
    assert "Normalizado: voltou ao normal" in render_text(recovered)
    assert subject_of(recovered).startswith("[NORMALIZADO] Loja <Azul>: CTR em queda")
    digest = digest_payload(context("pt_BR"), [planned().incident], day=date(2026, 11, 20))
    assert subject_of(digest) == "[resumo] Loja <Azul>: 1 incidente em 20/11/2026"
    empty = digest_payload(context("pt_BR"), [], day=date(2026, 11, 20))
    assert "Nenhum incidente." in render_text(empty)


def test_a_payload_stored_before_languages_is_told_in_english():
    payload = incident_payload(planned(), context("en"), today=date(2026, 11, 20))
    del payload["account"]["locale"]
    assert subject_of(payload).startswith("[CRITICAL] Loja <Azul>: CTR down on")
    payload["account"]["locale"] = "klingon"  # not a catalog: English, not a failed message
    assert "Metric: CTR 0.40% vs 1.25% expected (-68%)" in render_text(payload)


def test_money_at_stake_of_the_days_so_far_and_the_next_step_in_both_languages():
    facts = [fact(id=2, day=date(2026, 11, 18), impact_amount=1000.0),
             fact(impact_amount=564.97)]
    [incident] = build_incidents(facts)
    message = PlannedMessage("opened", incident.key, incident, incident.severity)
    english = incident_payload(message, context("en"), today=date(2026, 11, 20))
    assert english["incident"]["impact_amount"] == 1564.97
    assert english["incident"]["impact_text"] == "R$ 1,564.97"
    text = render_text(english)
    assert "Money at stake so far: R$ 1,564.97" in text
    assert ("Next step: Look at this ad set's creative and placement breakdown since "
            "2026-11-18") in text
    portuguese = render_text(incident_payload(message, context("pt_BR"),
                                              today=date(2026, 11, 20)))
    assert "Dinheiro em jogo até agora: R$ 1.564,97" in portuguese
    assert ("Próximo passo: Veja o criativo e o detalhamento por posicionamento deste conjunto "
            "de anúncios desde 18/11/2026") in portuguese


def test_without_a_stored_amount_no_money_is_told_and_a_recovery_has_no_next_step():
    payload = incident_payload(planned(), context("en"), today=date(2026, 11, 20))
    assert payload["incident"]["impact_amount"] is None
    assert "Money at stake" not in render_text(payload)
    payload.update(kind=RECOVERED, reason="back to normal")
    assert "Next step" not in render_text(payload)
