"""Money at stake, run start and next step of an anomaly (adsentinel.detect.impact)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from adsentinel.detect import impact
from adsentinel.detect.statistical import HARMFUL_DIRECTION

DAY = date(2026, 3, 10)
COUNTS = {"spend": 300.0, "impressions": 20_000.0, "clicks": 200.0, "leads": 10.0}


def test_harmful_directions_are_the_statistics_own():
    assert impact.HARMFUL_DIRECTION == HARMFUL_DIRECTION


@pytest.mark.parametrize(("metric", "direction", "actual", "expected", "counts", "kind", "money"), [
    # spend spike: spend above expected
    ("spend", "up", 900.0, 300.0, COUNTS, "spend_spike", 600.0),
    # tracking break: every CPL / leads / conversion-rate anomaly of the day carries the spend
    ("cpl", "up", 300.0, 15.0, {**COUNTS, "leads": 0.0}, "tracking_break", 300.0),
    ("leads", "down", 0.0, 20.0, {**COUNTS, "leads": 0.0}, "tracking_break", 300.0),
    ("conversion_rate", "down", 0.0, 0.1, {**COUNTS, "leads": 0.0}, "tracking_break", 300.0),
    # cost per result: (actual - expected) x results
    ("cpl", "up", 30.0, 15.0, COUNTS, "cost_rise", 150.0),
    ("cpc", "up", 1.5, 1.0, COUNTS, "cost_rise", 100.0),
    ("cpm", "up", 15.0, 10.0, COUNTS, "cost_rise", 100.0),  # 5 per 1,000 x 20,000
    # rates down: spend x (1 - actual / expected)
    ("ctr", "down", 0.005, 0.01, COUNTS, "ctr_drop", 150.0),
    ("conversion_rate", "down", 0.05, 0.1, COUNTS, "conversion_drop", 150.0),
    # delivery collapse: the expected spend not delivered
    ("spend", "down", 50.0, 300.0, COUNTS, "delivery_collapse", 250.0),
    ("impressions", "down", 20_000.0, 100_000.0, COUNTS, "delivery_collapse", 1200.0),
    # no money of its own, or good news
    ("leads", "down", 5.0, 20.0, COUNTS, "lead_drop", 0.0),
    ("cpl", "down", 5.0, 15.0, COUNTS, "good_news", 0.0),
    ("cpc", "down", 0.5, 1.0, COUNTS, "good_news", 0.0),
    ("frequency", "down", 1.1, 2.0, COUNTS, "good_news", 0.0),
    ("frequency", "up", 5.0, 2.0, COUNTS, "saturation", None),
    ("multivariate", "up", 4.2, 0.0, COUNTS, "unusual_combination", None),
])
def test_money_at_stake_per_kind(metric, direction, actual, expected, counts, kind, money):
    assert impact.anomaly_kind(metric, direction, counts) == kind
    assert impact.money_at_stake(metric, direction, actual, expected, counts) == money


def test_good_news_is_the_harmless_direction_except_spend_down():
    assert impact.is_good_news("cpc", "down") and impact.is_good_news("cpl", "down")
    assert impact.is_good_news("frequency", "down") and impact.is_good_news("ctr", "up")
    assert not impact.is_good_news("spend", "down")  # lost delivery, not a saving
    assert not impact.is_good_news("cpl", "up") and not impact.is_good_news("multivariate", "up")


def test_money_is_never_negative_and_missing_numbers_give_none():
    # a cost "rise" whose pooled rate is below expected today: nothing at stake, not a refund
    assert impact.money_at_stake("cpl", "up", 10.0, 15.0, COUNTS) == 0.0
    assert impact.money_at_stake("cpm", "up", 15.0, 10.0, {"spend": 1.0}) is None
    assert impact.money_at_stake("spend", "up", float("nan"), 300.0, COUNTS) is None
    assert impact.money_at_stake("impressions", "down", 0.0, 500.0,
                                 {"spend": 0.0, "impressions": 0.0}) is None
    assert impact.money_at_stake("cpc", "up", 1.2345, 1.0, {"clicks": 3}) == 0.7  # cents


def test_run_start_walks_back_over_consecutive_days():
    days = {DAY - timedelta(days=1), DAY - timedelta(days=2), DAY - timedelta(days=4)}
    assert impact.run_start(DAY, days) == DAY - timedelta(days=2)  # the gap on day -3 ends it
    assert impact.run_start(DAY, set()) == DAY
    # a test that pooled the last 3 days started at least 2 days before
    assert impact.run_start(DAY, set(), pooled_days=3) == DAY - timedelta(days=2)
    assert impact.run_start(DAY, {DAY - timedelta(days=3)}, pooled_days=3) == DAY - timedelta(3)
    every_day = {DAY - timedelta(days=n) for n in range(1, 400)}
    longest = impact.run_start(DAY, every_day)
    assert impact.duration_days(longest, DAY) == impact.MAX_RUN_DAYS
    assert impact.duration_days(DAY, DAY) == 1


def test_next_step_names_the_level_and_the_start():
    step = impact.next_step("tracking_break", level="ad", since=date(2026, 3, 8))
    assert "pixel" in step and "Conversions API" in step
    assert "this ad since 2026-03-08" in step
    spike = impact.next_step("spend_spike", level="adset", since=DAY)
    assert "budget edits" in spike and "this ad set" in spike
    collapse = impact.next_step("delivery_collapse", level="ad", since=DAY)
    assert "review status" in collapse and "billing" in collapse
    assert all(kind in impact.NEXT_STEPS for kind in impact.KINDS)
    # a gettext function translates the template and the level's word
    catalog = {impact.NEXT_STEPS["ctr_drop"]: "Veja o criativo deste %(level)s desde %(since)s.",
               "ad": "anúncio"}

    def translate(message, **variables):
        return catalog.get(message, message) % variables

    translated = impact.next_step("ctr_drop", level="ad", since=DAY, translate=translate)
    assert translated == "Veja o criativo deste anúncio desde 2026-03-10."


def test_total_counts_each_entity_day_once():
    rows = [(1, DAY, 300.0), (1, DAY, 300.0), (1, DAY, 40.0),  # one tracking break, 3 metrics
            (1, DAY - timedelta(days=1), 100.0), (2, DAY, None), (3, DAY, 12.5)]
    assert impact.total_at_stake(rows) == 412.5
