"""A channel's critical bypass: a critical incident goes out in the quiet window, anything less
(and a critical one on a channel without the bypass) waits for the window to end."""

from __future__ import annotations

import json
import random
from datetime import date

import pytest
from alert_builders import NOW, YESTERDAY, add_anomaly, add_days

from adsentinel.alerts.config import add_channel, list_channels
from adsentinel.alerts.service import deliver_alerts, plan_alerts
from adsentinel.alerts.suppression import bypasses_quiet_hours

QUIET = ("11:00", "13:00")  # NOW is 12:00 in the account's zone (UTC)


def channel(shop, receiver, monkeypatch, *, bypass: bool) -> int:
    monkeypatch.setenv("ALERT_HOOK_KEY", "k" * 16)
    return add_channel(session_factory=shop.session_factory, account_id=shop.account_id,
                       kind="webhook", target=receiver.ref, secret_ref="env:ALERT_HOOK_KEY",
                       min_severity="low", quiet_start=QUIET[0], quiet_end=QUIET[1],
                       critical_bypasses_quiet=bypass)


def plan_and_deliver(shop, settings, now=NOW) -> dict:
    plan_alerts(session_factory=shop.session_factory, settings=settings,
                account_id=shop.account_id, now=now)
    return deliver_alerts(session_factory=shop.session_factory, settings=settings, now=now,
                          rng=random.Random(0))


@pytest.mark.parametrize(("bypass", "severity", "sent_now"), [
    (True, "critical", True), (True, "high", False), (False, "critical", False)])
def test_only_critical_incidents_pass_a_bypassing_channel_in_quiet_hours(
        shop, settings, http_receiver, monkeypatch, bypass, severity, sent_now):
    channel(shop, http_receiver, monkeypatch, bypass=bypass)
    add_days(shop, date(2026, 11, 19), YESTERDAY)
    add_anomaly(shop, shop.campaign, YESTERDAY, severity=severity,
                score=95 if severity == "critical" else 80, actual=45.10)

    done = plan_and_deliver(shop, settings)
    assert (done["sent"], len(http_receiver.requests)) == ((1, 1) if sent_now else (0, 0))
    if sent_now:
        assert json.loads(http_receiver.requests[0].body)["incident"]["severity"] == "critical"
    later = plan_and_deliver(shop, settings, now=NOW.replace(hour=13, minute=5))
    assert later["sent"] == (0 if sent_now else 1)  # held ones go when the window ends


def test_the_option_is_stored_and_listed(shop, http_receiver, monkeypatch):
    channel(shop, http_receiver, monkeypatch, bypass=True)
    [listed] = list_channels(session_factory=shop.session_factory)
    assert listed["critical_bypasses_quiet"] is True and listed["quiet"] == "11:00-13:00"


def test_recoveries_and_digests_wait_even_with_the_bypass():
    critical = {"severity": "critical"}
    assert bypasses_quiet_hours({"kind": "opened", "incident": critical}, critical_bypass=True)
    assert bypasses_quiet_hours({"kind": "update", "incident": critical}, critical_bypass=True)
    assert not bypasses_quiet_hours({"kind": "recovered", "incident": critical},
                                    critical_bypass=True)
    assert not bypasses_quiet_hours({"kind": "digest"}, critical_bypass=True)
    assert not bypasses_quiet_hours({"kind": "opened", "incident": critical},
                                    critical_bypass=False)
