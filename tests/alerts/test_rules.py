"""Who is told what: severity floors, mutes, calendar days, minimum spend, digests."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from alert_builders import NOW, YESTERDAY, add_anomaly, add_days

from adsentinel.alerts.config import add_calendar_days, add_channel, add_mute
from adsentinel.alerts.incidents import AnomalyFact, Incident
from adsentinel.alerts.service import deliver_alerts, plan_alerts, send_digests
from adsentinel.alerts.suppression import (
    AccountRules,
    MuteView,
    active_mute,
    in_quiet_hours,
    parse_clock,
    quiet_hours_end,
    suppression_reason,
)
from adsentinel.db.engine import session_scope
from adsentinel.db.models import AdAccount

# --- pure rules -------------------------------------------------------------------------------


@pytest.mark.parametrize("clock, quiet", [
    ("21:59", False), ("22:00", True), ("23:59", True), ("00:00", True), ("06:59", True),
    ("07:00", False), ("12:00", False),
])
def test_quiet_window_across_midnight(clock, quiet):
    assert in_quiet_hours(parse_clock(clock), time(22), time(7)) is quiet


def test_quiet_window_within_a_day_and_no_window():
    assert in_quiet_hours(time(13), time(12), time(14))
    assert not in_quiet_hours(time(14), time(12), time(14))
    assert not in_quiet_hours(time(3), None, None)
    assert not in_quiet_hours(time(3), time(5), time(5))


def test_quiet_end_is_in_the_account_timezone():
    zone = ZoneInfo("America/Sao_Paulo")  # UTC-3
    now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 23:00 local
    assert quiet_hours_end(now, zone, time(22), time(7)) == datetime(
        2026, 11, 20, 10, 0, tzinfo=UTC)
    assert quiet_hours_end(now.replace(hour=15), zone, time(22), time(7)) is None


def test_bad_clock_says_what_is_expected():
    with pytest.raises(ValueError, match="HH:MM"):
        parse_clock("7pm", name="quiet start")


def test_mute_covers_descendants_until_its_last_day():
    parents = {1: None, 2: 1, 3: 2, 4: None}
    campaign_mute = MuteView(10, 1, date(2026, 11, 20))
    assert active_mute(3, parents, [campaign_mute], date(2026, 11, 20)) == campaign_mute
    assert active_mute(3, parents, [campaign_mute], date(2026, 11, 21)) is None
    assert active_mute(4, parents, [campaign_mute], date(2026, 11, 20)) is None
    account_mute = MuteView(11, None, None)
    assert active_mute(4, parents, [account_mute], date(2030, 1, 1)) == account_mute


def _incident(severity: str, day: date = YESTERDAY, drivers=None) -> Incident:
    fact = AnomalyFact(1, 3, day, "cpl", "up", severity, 80.0, 40.0, 10.0, "open", None, "m",
                       drivers=drivers or {})
    return Incident((fact,))


def _rules(**changes) -> AccountRules:
    values = dict(parents={1: None, 2: 1, 3: 2}, mutes=(), calendar={}, min_alert_spend=None,
                  spend={(3, YESTERDAY): 50.0}, local_today=date(2026, 11, 20))
    values.update(changes)
    return AccountRules(**values)


def test_suppression_reasons():
    assert suppression_reason(_incident("high"), _rules(), "medium") is None
    assert "below the channel's high" in suppression_reason(_incident("medium"), _rules(), "high")
    muted = _rules(mutes=(MuteView(7, 1, None, "launch"),))
    assert suppression_reason(_incident("critical"), muted, "low") == "muted (rule 7: launch)"
    assert "below the account's minimum 80.00" in suppression_reason(
        _incident("critical"), _rules(min_alert_spend=80.0), "low")
    assert suppression_reason(_incident("critical"), _rules(min_alert_spend=50.0), "low") is None
    on_holiday = _rules(calendar={YESTERDAY: "Black Friday"})
    assert "calendar day (Black Friday)" in suppression_reason(_incident("medium"), on_holiday,
                                                               "low")
    assert suppression_reason(_incident("high"), on_holiday, "low") is None
    old = _incident("critical", day=date(2026, 11, 16))  # four days before the local today
    assert suppression_reason(old, _rules(), "low") == "stale: newest anomaly on 2026-11-16"
    assert suppression_reason(_incident("critical", day=date(2026, 11, 17)), _rules(),
                              "low") is None


# --- through planning -------------------------------------------------------------------------


def _slack(shop, receiver, **options) -> int:
    return add_channel(session_factory=shop.session_factory, account_id=shop.account_id,
                       kind="slack", target=receiver.ref, **options)


def _run(shop, settings, now=NOW) -> dict:
    planned = plan_alerts(session_factory=shop.session_factory, settings=settings,
                          account_id=shop.account_id, now=now)
    deliver_alerts(session_factory=shop.session_factory, settings=settings, now=now)
    return planned


def _subjects(receiver) -> list[str]:
    return [json.loads(r.body)["text"] for r in receiver.requests]


def test_channel_severity_floor(shop, settings, http_receiver):
    _slack(shop, http_receiver, min_severity="high")
    add_anomaly(shop, shop.campaign, YESTERDAY, severity="medium", score=65)
    _run(shop, settings)
    assert http_receiver.requests == []
    add_anomaly(shop, shop.campaign, YESTERDAY, severity="high", score=80)
    _run(shop, settings, NOW + timedelta(hours=1))
    assert _subjects(http_receiver) == ["[HIGH] Acme: CPL up on Black Friday (1 day)"]


def test_mute_of_a_campaign_silences_its_ads_until_the_date(shop, settings, http_receiver):
    _slack(shop, http_receiver)
    add_mute(session_factory=shop.session_factory, account_id=shop.account_id, entity_ref="c1",
             until=date(2026, 11, 20), reason="new creative test", created_by="ana")
    add_anomaly(shop, shop.ads[1], YESTERDAY, severity="critical", score=95)
    _run(shop, settings)
    assert http_receiver.requests == []
    _run(shop, settings, NOW + timedelta(days=1))  # the mute ended yesterday
    assert len(http_receiver.requests) == 1
    assert "Black Friday &gt; Women 25-34 &gt; Video 2" in _subjects(http_receiver)[0]


def test_minimum_daily_spend(shop, settings, http_receiver):
    _slack(shop, http_receiver)
    with session_scope(shop.session_factory) as session:
        session.get(AdAccount, shop.account_id).min_alert_spend = 150.0  # the shop spends 100
    add_anomaly(shop, shop.campaign, YESTERDAY, severity="critical", score=95)
    assert _run(shop, settings)["suppressed"] == 1
    assert http_receiver.requests == []
    add_days(shop, YESTERDAY, YESTERDAY, spend=200.0)
    _run(shop, settings, NOW + timedelta(hours=1))
    assert len(http_receiver.requests) == 1


def test_calendar_day_alerts_only_from_high(shop, settings, http_receiver):
    _slack(shop, http_receiver, min_severity="low")
    add_calendar_days(session_factory=shop.session_factory, account_id=shop.account_id,
                      days=[(YESTERDAY, "promotion", "Black Friday sale")])
    add_anomaly(shop, shop.campaign, YESTERDAY, severity="medium", score=70)
    _run(shop, settings)
    assert http_receiver.requests == []
    add_anomaly(shop, shop.campaign, YESTERDAY, severity="high", score=80)
    _run(shop, settings, NOW + timedelta(hours=1))
    assert len(http_receiver.requests) == 1


def test_dismissed_incident_never_alerts(shop, settings, http_receiver):
    _slack(shop, http_receiver)
    add_anomaly(shop, shop.campaign, YESTERDAY, severity="critical", score=95,
                status="false_positive")
    _run(shop, settings)
    assert http_receiver.requests == []


def test_digest_channel_gets_one_summary_at_digest_time(shop, settings, http_receiver):
    _slack(shop, http_receiver, digest=True)
    add_anomaly(shop, shop.campaign, YESTERDAY, severity="high")
    add_anomaly(shop, shop.ads[2], YESTERDAY, metric="ctr", direction="down", severity="medium",
                score=62, actual=0.004, expected=0.02)
    _run(shop, settings)  # noon: instant planning leaves digest channels alone
    assert http_receiver.requests == []

    before = NOW.replace(day=21, hour=7, minute=59)
    assert send_digests(session_factory=shop.session_factory, settings=settings,
                        now=before)["digests"] == 0
    at = NOW.replace(day=21, hour=8, minute=0)
    for minutes in range(0, 30, 5):  # the task runs every few minutes: one digest a day
        moment = at + timedelta(minutes=minutes)
        send_digests(session_factory=shop.session_factory, settings=settings, now=moment)
        deliver_alerts(session_factory=shop.session_factory, settings=settings, now=moment)
    [request] = http_receiver.requests
    body = json.loads(request.body)
    assert body["text"] == "[digest] Acme: 2 incidents on 2026-11-21"
    text = body["blocks"][1]["text"]["text"]
    assert "1. [HIGH] CPL up on Black Friday" in text
    assert "2. [MEDIUM] CTR down on Black Friday &gt; Women 25-34 &gt; Video 3" in text
    assert "0.40% vs 2.00% expected" in text


def test_damped_repeat_does_not_alert_even_a_low_floor():
    damped = _incident("low", drivers={"feedback": {"damped_by_anomaly": 42}})
    assert suppression_reason(damped, _rules(), "low") == (
        "repeats the pattern of anomaly 42, marked not an incident")
