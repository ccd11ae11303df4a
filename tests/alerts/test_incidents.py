"""Incidents from anomaly rows, and which messages a channel needs (pure), plus the recovery
rules that need the database."""

from __future__ import annotations

import json
from datetime import date, timedelta

from alert_builders import NOW, YESTERDAY, add_anomaly, add_days

from adsentinel.alerts.config import add_channel
from adsentinel.alerts.incidents import (
    OPENED,
    RECOVERED,
    UPDATE,
    AlertedIncident,
    AnomalyFact,
    IncidentKey,
    build_incidents,
    decide_messages,
)
from adsentinel.alerts.service import deliver_alerts, plan_alerts

D = date(2026, 11, 10)
_ids = iter(range(1, 10_000))


def fact(entity: int, day: date, *, metric="cpl", direction="up", severity="high", score=80.0,
         status="open", incident_id=None, fact_id=None) -> AnomalyFact:
    return AnomalyFact(fact_id or next(_ids), entity, day, metric, direction, severity, score,
                       40.0, 10.0, status, incident_id, "m")


def test_consecutive_days_are_one_incident_and_a_gap_starts_another():
    rows = [fact(1, D), fact(1, D + timedelta(days=1)), fact(1, D + timedelta(days=3)),
            fact(1, D, metric="ctr", direction="down"), fact(2, D)]
    keys = sorted((i.key.entity_id, i.key.metric, i.key.start_day, len(i.heads))
                  for i in build_incidents(rows))
    assert keys == [(1, "cpl", D, 2), (1, "cpl", D + timedelta(days=3), 1), (1, "ctr", D, 1),
                    (2, "cpl", D, 1)]


def test_children_attach_to_their_head_worst_first_and_retracted_rows_vanish():
    head = fact(1, D, fact_id=500)
    rows = [head, fact(2, D, score=61, incident_id=500), fact(3, D, score=90, incident_id=500),
            fact(3, D, metric="cpm", score=70, incident_id=500),
            fact(4, D, score=99, incident_id=500, status="retracted"),
            fact(9, D, status="retracted")]
    [incident] = build_incidents(rows)
    assert [c.entity_id for c in incident.children] == [3, 2]
    assert incident.children[0].score == 90


def test_severity_is_the_worst_reached_and_dismissal_covers_the_run():
    rows = [fact(1, D, severity="critical", score=95),
            fact(1, D + timedelta(days=1), severity="medium", score=62)]
    [incident] = build_incidents(rows)
    assert incident.severity == "critical" and incident.latest.severity == "medium"
    assert incident.duration_days() == 2
    rows[1] = fact(1, D + timedelta(days=1), status="expected")
    assert build_incidents(rows)[0].dismissed


def _alerted(incident, *, severity="high", recovered=False, latest=None) -> AlertedIncident:
    return AlertedIncident(incident.key, latest or incident.latest.day, severity, recovered,
                           {"incident": {}})


def test_decisions_open_update_recover():
    [incident] = build_incidents([fact(1, D, severity="high")])
    yes = {incident.key: True}
    assert [m.kind for m in decide_messages([incident], [], eligible=yes, recovered={})] == [OPENED]
    assert decide_messages([incident], [], eligible={}, recovered={}) == []
    same = [_alerted(incident)]
    assert decide_messages([incident], same, eligible=yes, recovered={}) == []
    lower = [_alerted(incident, severity="medium")]
    [update] = decide_messages([incident], lower, eligible=yes, recovered={})
    assert (update.kind, update.severity) == (UPDATE, "high")
    assert decide_messages([incident], lower, eligible={}, recovered={}) == []  # muted since
    [done] = decide_messages([incident], same, eligible=yes, recovered=yes)
    assert (done.kind, done.reason) == (RECOVERED, "back to normal")
    [gone] = decide_messages([], same, eligible={}, recovered={})
    assert (gone.kind, gone.reason, gone.incident) == (RECOVERED, "restated data is normal", None)
    assert decide_messages([], [_alerted(incident, recovered=True)], eligible={},
                           recovered={}) == []


def test_a_run_whose_first_day_was_restated_away_keeps_its_identity():
    [shorter] = build_incidents([fact(1, D + timedelta(days=1))])
    known = AlertedIncident(IncidentKey(1, "cpl", "up", D), D, "high", False, {"incident": {}})
    assert decide_messages([shorter], [known], eligible={shorter.key: True}, recovered={}) == []
    [later] = build_incidents([fact(1, D + timedelta(days=5))])
    kinds = sorted(m.kind for m in decide_messages([later], [known],
                                                   eligible={later.key: True}, recovered={}))
    assert kinds == [OPENED, RECOVERED]


def test_an_ad_carried_on_by_its_campaign_recovers_only_when_normal(shop, settings,
                                                                    http_receiver):
    add_channel(session_factory=shop.session_factory, account_id=shop.account_id, kind="slack",
                target=http_receiver.ref)
    ad = shop.ads[0]
    add_anomaly(shop, ad, date(2026, 11, 18))  # the ad alone first
    plan_alerts(session_factory=shop.session_factory, settings=settings,
                account_id=shop.account_id, now=NOW - timedelta(days=1))
    add_days(shop, YESTERDAY, YESTERDAY)
    head = add_anomaly(shop, shop.campaign, YESTERDAY)  # then the whole campaign, ad attached
    add_anomaly(shop, ad, YESTERDAY, incident_id=head)
    plan_alerts(session_factory=shop.session_factory, settings=settings,
                account_id=shop.account_id, now=NOW)
    deliver_alerts(session_factory=shop.session_factory, settings=settings, now=NOW)
    texts = [json.loads(r.body)["text"] for r in http_receiver.requests]
    assert len(texts) == 2 and not any("RECOVERED" in text for text in texts)

    add_days(shop, date(2026, 11, 20), date(2026, 11, 20))  # a normal day for both
    plan_alerts(session_factory=shop.session_factory, settings=settings,
                account_id=shop.account_id, now=NOW + timedelta(days=1))
    deliver_alerts(session_factory=shop.session_factory, settings=settings,
                   now=NOW + timedelta(days=1))
    texts = [json.loads(r.body)["text"] for r in http_receiver.requests[2:]]
    assert sorted(t.split(":")[0] for t in texts) == ["[RECOVERED] Acme", "[RECOVERED] Acme"]


def test_a_detection_chunk_plans_only_its_campaigns(shop, settings, http_receiver):
    add_channel(session_factory=shop.session_factory, account_id=shop.account_id, kind="slack",
                target=http_receiver.ref)
    add_anomaly(shop, shop.ads[1], YESTERDAY)
    other_campaign = shop.campaign + 1000
    result = plan_alerts(session_factory=shop.session_factory, settings=settings,
                         account_id=shop.account_id, now=NOW, campaign_ids=[other_campaign])
    assert result["enqueued"] == 0
    result = plan_alerts(session_factory=shop.session_factory, settings=settings,
                         account_id=shop.account_id, now=NOW, campaign_ids=[shop.campaign])
    assert result["enqueued"] == 1


def test_the_day_after_a_dismissed_one_is_a_new_incident():
    rows = [fact(1, D, status="false_positive"), fact(1, D + timedelta(days=1), score=95,
                                                      severity="critical")]
    dismissed, fresh = sorted(build_incidents(rows), key=lambda i: i.key.start_day)
    assert dismissed.dismissed and not fresh.dismissed
    assert fresh.key.start_day == D + timedelta(days=1)
    [message] = decide_messages([dismissed, fresh], [], eligible={fresh.key: True,
                                                                  dismissed.key: True},
                                recovered={})
    assert (message.kind, message.key) == (OPENED, fresh.key)


def test_closing_a_dismissed_alert_and_opening_the_bigger_one_after_it():
    first = fact(1, D, status="false_positive")
    [dismissed] = build_incidents([first])
    known = _alerted(dismissed)
    runs = build_incidents([first, fact(1, D + timedelta(days=1), severity="critical")])
    messages = decide_messages(runs, [known], eligible={r.key: True for r in runs}, recovered={})
    assert sorted((m.kind, m.key.start_day) for m in messages) == [
        (OPENED, D + timedelta(days=1)), (RECOVERED, D)]


def test_a_damped_day_before_a_real_incident_does_not_start_it():
    damped = AnomalyFact(next(_ids), 1, D, "cpm", "up", "low", 40.0, 17.0, 10.0, "open", None,
                         "m", drivers={"feedback": {"damped_by_anomaly": 3}})
    real = fact(1, D + timedelta(days=1), metric="cpm", severity="critical", score=95)
    runs = sorted(build_incidents([damped, real]), key=lambda i: i.key.start_day)
    assert [r.key.start_day for r in runs] == [D, D + timedelta(days=1)]
    assert runs[0].damped_by == 3 and runs[1].damped_by is None
