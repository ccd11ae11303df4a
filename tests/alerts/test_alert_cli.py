"""The alert commands as a user types them, and detection planning alerts by itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from adsentinel.alerts.service import deliver_alerts
from adsentinel.cli import app
from adsentinel.cli.app import console
from adsentinel.db.engine import make_session_factory, open_database
from adsentinel.db.models import AdAccount, AlertOutbox, Anomaly
from adsentinel.detection.service import run_detection
from adsentinel.ingest.csv_import import import_insights_csv
from factories import CANONICAL_HEADER, write_csv

runner = CliRunner()
#: Yesterday: detection plans at the current time, and older incidents are stale.
LAST_DAY = datetime.now(UTC).date() - timedelta(days=1)


def cli(*args: str):
    result = runner.invoke(app, list(args), catch_exceptions=True)
    return result


def _insights_with_a_broken_ad(tmp_path):
    """30 days of 4 ads; on the last day ad a0's leads fall to zero on normal spend."""
    rng = np.random.default_rng(5)
    rows = []
    for offset in range(30):
        day = LAST_DAY - timedelta(days=29 - offset)
        for k in range(4):
            impressions = int(rng.poisson(10000))
            clicks = int(rng.binomial(impressions, 0.015))
            leads = 0 if (k == 0 and day == LAST_DAY) else int(rng.binomial(clicks, 0.12))
            rows.append([day.isoformat(), "act_9", "c0", f"s{k // 2}", f"a{k}",
                         f"{100 * rng.uniform(0.95, 1.05):.2f}", impressions, clicks, leads,
                         int(impressions * 0.8)])
    return write_csv(tmp_path / "insights.csv", rows, CANONICAL_HEADER)


@pytest.fixture
def imported(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("ADSENTINEL_DATA_DIR", str(settings.data_dir))  # the CLI's settings
    monkeypatch.setattr(console, "width", 220)  # a wide terminal: one table row per line
    engine = open_database(settings)
    import_insights_csv(_insights_with_a_broken_ad(tmp_path), engine=engine,
                        account_name="Shoes")
    yield make_session_factory(engine)
    engine.dispose()


def test_detection_plans_the_alert_and_delivery_sends_it(settings, imported, http_receiver):
    result = cli("alerts", "channel", "add", "--account", "Shoes", "--kind", "slack",
                 "--target", http_receiver.ref)
    assert result.exit_code == 0, result.output
    summary = run_detection(session_factory=imported, settings=settings, account_id=1)
    assert summary.alerts["enqueued"] >= 1
    again = run_detection(session_factory=imported, settings=settings, account_id=1)
    assert again.alerts["enqueued"] == 0  # the next hourly run adds nothing
    deliver_alerts(session_factory=imported, settings=settings)
    texts = [json.loads(r.body)["text"] for r in http_receiver.requests]
    assert any("c0 &gt; s0 &gt; a0" in text for text in texts), texts  # Slack shows c0 > s0


def test_webhook_channel_warns_when_its_key_is_missing_here(settings, imported, monkeypatch):
    monkeypatch.delenv("HOOK_KEY_NOT_SET", raising=False)
    result = cli("alerts", "channel", "add", "--account", "Shoes", "--kind", "webhook",
                 "--target", "env:SHOES_HOOK_URL", "--secret-ref", "env:HOOK_KEY_NOT_SET")
    assert result.exit_code == 0
    assert "HOOK_KEY_NOT_SET is not set in this shell" in result.output


def test_channel_commands(settings, imported):
    assert cli("alerts", "channel", "add", "--account", "Shoes", "--kind", "email",
               "--target", "team@shoes.test", "--min-severity", "high",
               "--quiet", "22:00-07:00").exit_code == 0
    listed = cli("alerts", "channel", "list")
    assert "team@shoes.test" in listed.output and "22:00-07:00" in listed.output
    assert cli("alerts", "channel", "remove", "1").exit_code == 0
    assert "no alert channel" in cli("alerts", "channel", "list").output


@pytest.mark.parametrize("args, message", [
    (["--kind", "pager", "--target", "x"], "channel kind 'pager' is not known"),
    (["--kind", "slack", "--target", "hooks.slack.com/x"], "is not env:VARIABLE_NAME"),
    (["--kind", "slack", "--target", "https://hooks.slack.com/T1/B2/s3cr3t"],
     "a slack URL (https://hooks.slack.com/***) is a secret and is not stored in clear"),
    (["--kind", "webhook", "--target", "env:H"], "needs --secret-ref env:VARIABLE"),
    (["--kind", "email", "--target", "a@b.test\r\nBcc: x@evil.test"], "is not one email"),
    (["--kind", "email", "--target", "a@b.test", "--min-severity", "urgent"],
     "severity must be one of low, medium, high, critical"),
    (["--kind", "email", "--target", "a@b.test", "--quiet", "22h-7h"], "HH:MM"),
])
def test_bad_channels_are_refused_with_the_reason(settings, imported, args, message):
    result = cli("alerts", "channel", "add", "--account", "Shoes", *args)
    assert result.exit_code != 0
    assert message in str(result.exception)


def test_mute_and_calendar_commands(settings, imported, tmp_path):
    assert cli("mute", "add", "--account", "Shoes", "--entity", "s1", "--until", "2026-12-01",
               "--reason", "creative test", "--by", "ana").exit_code == 0
    assert cli("mute", "add", "--account", "Shoes").exit_code == 0
    listed = cli("mute", "list").output
    assert "adset s1" in listed and "whole account" in listed and "creative test" in listed
    assert cli("mute", "remove", "2").exit_code == 0
    assert "whole account" not in cli("mute", "list").output
    assert "no campaign, ad set or ad 'zz'" in str(
        cli("mute", "add", "--account", "Shoes", "--entity", "zz").exception)

    assert cli("calendar", "add", "--account", "Shoes", "2026-11-27", "--kind", "promotion",
               "--label", "Black Friday").exit_code == 0
    days = tmp_path / "holidays.csv"
    days.write_text("day,kind,label\n2026-12-25,holiday,Christmas\n2027-01-01,holiday,\n")
    assert cli("calendar", "import", str(days), "--account", "Shoes").exit_code == 0
    listed = cli("calendar", "list", "--account", "Shoes").output
    assert "Black Friday" in listed and "Christmas" in listed and "2027-01-01" in listed
    assert cli("calendar", "remove", "--account", "Shoes", "2026-12-25").exit_code == 0
    assert "Christmas" not in cli("calendar", "list", "--account", "Shoes").output

    bad = tmp_path / "bad.csv"
    bad.write_text("day,kind\n2026-13-01,holiday\n2026-12-31,party\n")
    error = str(cli("calendar", "import", str(bad), "--account", "Shoes").exception)
    assert "bad.csv:2 column 'day'" in error and "bad.csv:3 column 'kind'" in error


def test_anomalies_mark(settings, imported):
    run_detection(session_factory=imported, settings=settings, account_id=1)
    with imported() as session:
        anomaly_id = session.scalars(select(Anomaly.id)).first()
    result = cli("anomalies", "mark", str(anomaly_id), "false_positive", "--by", "ana")
    assert result.exit_code == 0, result.output
    assert f"anomaly {anomaly_id} marked false_positive" in result.output
    with imported() as session:
        assert session.get(Anomaly, anomaly_id).status == "false_positive"
    assert "unknown status 'wrong'" in str(cli("anomalies", "mark", str(anomaly_id),
                                               "wrong").exception)
    assert "anomaly 999999 does not exist" in str(cli("anomalies", "mark", "999999",
                                                      "expected").exception)


def test_deliver_command_reports_failures(settings, imported, http_receiver):
    http_receiver.fail_next = 100
    cli("alerts", "channel", "add", "--account", "Shoes", "--kind", "slack",
        "--target", http_receiver.ref)
    run_detection(session_factory=imported, settings=settings, account_id=1)
    result = cli("alerts", "deliver")
    assert result.exit_code == 0, result.output
    assert "0 sent" in result.output and "to retry" in result.output
    outbox = cli("alerts", "outbox", "--status", "pending")
    assert "HTTP 503" in outbox.output
    with imported() as session:
        assert session.scalars(select(AlertOutbox.attempts)).first() == 1


def test_channel_test_command(settings, imported, http_receiver):
    cli("alerts", "channel", "add", "--account", "Shoes", "--kind", "slack",
        "--target", http_receiver.ref)
    result = cli("alerts", "channel", "test", "1")
    assert result.exit_code == 0, result.output
    assert "channel 1 accepted the test message" in result.output
    body = json.loads(http_receiver.requests[0].body)
    assert body["text"] == "[TEST] Shoes: adsentinel alerts reach this channel"
    http_receiver.fail_next = 1
    failed = cli("alerts", "channel", "test", "1")
    assert failed.exit_code != 0
    assert "did not accept the test message" in str(failed.exception)
    assert "HTTP 503" in str(failed.exception)


def test_min_spend_command(settings, imported):
    result = cli("alerts", "min-spend", "--account", "Shoes", "50")
    assert result.exit_code == 0, result.output
    assert "alerts only from a daily spend of 50.00" in result.output
    with imported() as session:
        assert session.get(AdAccount, 1).min_alert_spend == 50.0
    assert cli("alerts", "min-spend", "--account", "Shoes", "--clear").exit_code == 0
    with imported() as session:
        assert session.get(AdAccount, 1).min_alert_spend is None
    assert "give either an AMOUNT or --clear" in str(
        cli("alerts", "min-spend", "--account", "Shoes").exception)
    assert "must be a number >= 0" in str(
        cli("alerts", "min-spend", "--account", "Shoes", "--", "-5").exception)
