"""An alert's "Detail:" line, detection's own sentence, in the account's language: rebuilt from
the anomaly's stored facts for a pt_BR account, detection's English for an English one, and the
stored English when the facts do not rebuild it (an anomaly stored before they were)."""

from __future__ import annotations

import json
from datetime import date

from adsentinel.alerts.incidents import AnomalyFact, PlannedMessage, build_incidents
from adsentinel.alerts.messages import (
    MessageContext,
    digest_payload,
    incident_payload,
    render_slack,
    render_text,
    render_webhook,
)

#: a CTR drop as detection stores it (its message and the drivers it writes beside it)
CTR_DROP = "CTR 0.40% vs 1.25% expected (-68%): 40 clicks on 10,000 impressions"
DRIVERS = {"spend": 52.0, "impressions": 10000.0, "clicks": 40.0, "leads": 2.0, "z": -6.1}


def context(locale: str) -> MessageContext:
    return MessageContext(account_id=1, account_name="Loja Azul", currency="BRL",
                          paths={7: "Black Friday > Mulheres 25-34"}, levels={7: "adset"},
                          public_url="https://ads.example.com", locale=locale)


def planned(message: str = CTR_DROP, drivers=None) -> PlannedMessage:
    facts = [AnomalyFact(id=i, entity_id=7, day=day, metric="ctr", direction="down",
                         severity="critical", score=91.0, actual=0.004, expected=0.0125,
                         status="open", incident_id=None, message=message,
                         drivers=DRIVERS if drivers is None else drivers, detectors="nb_rate")
             for i, day in ((2, date(2026, 11, 18)), (3, date(2026, 11, 19)))]
    [incident] = build_incidents(facts)
    return PlannedMessage("opened", incident.key, incident, incident.severity)


def test_a_pt_br_account_reads_detections_sentence_in_portuguese():
    payload = incident_payload(planned(), context("pt_BR"), today=date(2026, 11, 20))
    assert payload["incident"]["message"] == CTR_DROP  # the machine value stays detection's
    detail = "Detalhe: CTR 0,40% vs. 1,25% esperado (-68%): 40 cliques em 10.000 impressões"
    assert detail in render_text(payload).splitlines()
    assert "40 cliques em 10.000 impressões" in json.loads(render_webhook(payload, "k" * 64))[
        "text"]
    assert "40 cliques em 10.000 impressões" in json.dumps(render_slack(payload, "k" * 64),
                                                          ensure_ascii=False)
    digest = digest_payload(context("pt_BR"), [planned().incident], day=date(2026, 11, 20))
    assert "40 cliques em 10.000 impressões" in render_text(digest)


def test_an_english_account_reads_the_stored_sentence():
    payload = incident_payload(planned(), context("en"), today=date(2026, 11, 20))
    assert f"Detail: {CTR_DROP}" in render_text(payload).splitlines()


def test_without_the_facts_a_pt_br_account_reads_the_stored_english():
    for message, drivers in ((CTR_DROP, {"z": -6.1}),  # stored before drivers held counts
                             ("CTR fell to 0.40%", DRIVERS)):  # an older detector's words
        payload = incident_payload(planned(message, drivers), context("pt_BR"),
                                   today=date(2026, 11, 20))
        assert f"Detalhe: {message}" in render_text(payload).splitlines()


def test_a_payload_planned_before_message_text_existed_still_renders_its_message():
    payload = incident_payload(planned(), context("pt_BR"), today=date(2026, 11, 20))
    del payload["incident"]["message_text"]
    assert f"Detalhe: {CTR_DROP}" in render_text(payload).splitlines()
