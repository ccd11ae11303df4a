"""Judging a whole account on a day: the common move, parents explained by their ads, launches
and delivery collapses. Each case is hand-made and fails without its rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
from test_anomaly_detector import ad_history

from adsentinel.detect.account_day import AccountTree, EntityModel, judge_account_day
from adsentinel.detect.anomaly_detector import (
    MULTIVARIATE,
    AnomalyDetector,
    SeverityLevel,
)
from adsentinel.detect.common_move import common_moves
from adsentinel.detect.daily_table import prepare_daily_frame
from adsentinel.detect.features import COUNT_COLUMNS, isolation_forest_features
from adsentinel.detect.forest import IsolationForest
from adsentinel.detect.hierarchy_rules import ChildMove, parent_is_explained

DAY = pd.Timestamp("2026-01-05") + pd.Timedelta(days=59)


def common_factors(other_campaigns) -> dict[str, float]:
    """The factors :func:`common_moves` gives a campaign with no tests of its own, from the
    other campaigns' one-day tests."""
    return common_moves({**dict(enumerate(other_campaigns)), "judged": []})["judged"]


def account(n_campaigns=4, ads_per_campaign=3, seed=0, **kwargs):
    """``{(campaign, ad): frame}`` of identical, independent ads."""
    ads = {}
    for c in range(n_campaigns):
        for a in range(ads_per_campaign):
            ads[(f"c{c}", f"a{c}{a}")] = ad_history(seed=seed + 10 * c + a, **kwargs)
    return ads


def tree_of(ads: dict) -> AccountTree:
    """Campaign > one ad set > ads, parents as sums."""
    frames, levels, parents, ids = {}, {}, {}, {}
    by_campaign: dict[str, list] = {}
    for (campaign, ad), frame in ads.items():
        by_campaign.setdefault(campaign, []).append(frame)
        key = ("ad", ad)
        frames[key], levels[key], parents[key], ids[key] = frame, "ad", ("adset", campaign), ad
    for campaign, members in by_campaign.items():
        total = members[0].copy()
        for other in members[1:]:
            total[list(COUNT_COLUMNS)] = total[list(COUNT_COLUMNS)].add(other[list(COUNT_COLUMNS)])
        for level, parent in (("adset", ("campaign", campaign)), ("campaign", None)):
            key = (level, campaign)
            frames[key], levels[key], parents[key], ids[key] = total, level, parent, campaign
    return AccountTree(frames, levels, parents, ids)


def hit(frame: pd.DataFrame, day=DAY, **factors) -> None:
    """Multiply counts on ``day`` in place (``impressions=0.6`` ...)."""
    row = frame["date"] == day
    for column, factor in factors.items():
        frame.loc[row, column] = np.round(frame.loc[row, column] * factor)


def worst(found, entity_id, metric=None):
    chosen = [a for a in found if a.entity_id == entity_id and (metric is None or a.metric == metric)]
    return max(chosen, key=lambda a: a.score) if chosen else None


def rank(found, entity_id, metric=None) -> int:
    chosen = worst(found, entity_id, metric)
    return -1 if chosen is None else chosen.severity.rank


def rank_alone(tree: AccountTree, key, metric) -> int:
    """Severity rank of ``metric`` for ``key`` judged on its own, as before the account rules."""
    alone = AnomalyDetector().detect_anomalies(tree.frames[key], key[0], key[1],
                                               analysis_date=DAY.date())
    return max((a.severity.rank for a in alone if a.metric == metric), default=-1)


def judge(ads, judged=None):
    tree = tree_of(ads)
    return judge_account_day(AnomalyDetector(), tree, DAY.date(), judged or list(tree.frames))


def test_an_account_wide_price_rise_is_judged_against_the_account():
    ads = account()
    for frame in ads.values():  # CPM +60 % everywhere: fewer impressions for the same spend
        hit(frame, impressions=1 / 1.6, clicks=1 / 1.6, leads=1 / 1.6, reach=1 / 1.6)
    assert rank_alone(tree_of(ads), ("campaign", "c0"), "cpm") >= SeverityLevel.MEDIUM.rank
    assert rank(judge(ads), "c0", "cpm") < SeverityLevel.MEDIUM.rank


def test_the_third_day_of_an_account_wide_price_rise_is_judged_against_the_account_too():
    ads = account()
    for frame in ads.values():  # an auction-wide doubling of CPM, for three days now
        for back in range(3):
            hit(frame, day=DAY - pd.Timedelta(days=back), impressions=0.5, clicks=0.5,
                leads=0.5, reach=0.5)
    assert rank_alone(tree_of(ads), ("campaign", "c0"), "cpc") >= SeverityLevel.MEDIUM.rank
    found = judge(ads)  # the account's own move is measured on today alone, not pooled
    assert all(a.severity.rank < SeverityLevel.MEDIUM.rank for a in found
               if a.metric in ("cpm", "cpc", "ctr"))


def test_an_account_wide_conversion_outage_is_still_reported():
    ads = account()
    for frame in ads.values():
        hit(frame, leads=0.0)
    found = judge(ads)
    assert rank(found, "c0", "cpl") >= SeverityLevel.MEDIUM.rank


def test_one_campaigns_own_incident_is_not_explained_away_by_the_rest():
    ads = account()
    for (campaign, _ad), frame in ads.items():
        if campaign == "c0":
            hit(frame, impressions=1 / 2.5, clicks=1 / 2.5, leads=1 / 2.5, reach=1 / 2.5)
    assert rank(judge(ads), "c0", "cpm") >= SeverityLevel.MEDIUM.rank


def test_a_parent_whose_move_one_ad_explains_is_at_most_low():
    ads = account(n_campaigns=2, ads_per_campaign=8, spend=300.0)
    hit(ads[("c0", "a00")], leads=0.0)  # one ad of eight: tracking broken there
    found = judge(ads)
    assert rank(found, "a00") >= SeverityLevel.MEDIUM.rank
    campaign = worst(found, "c0", "cpl")
    assert campaign is None or campaign.severity.rank < SeverityLevel.MEDIUM.rank
    assert campaign is None or "explained by 1 of its ads" in campaign.message


def test_a_parent_carries_an_incident_most_of_its_ads_share():
    ads = account(n_campaigns=2, ads_per_campaign=4, spend=300.0)
    for (campaign, _ad), frame in ads.items():
        if campaign == "c0":
            hit(frame, leads=0.0)
    assert rank(judge(ads), "c0", "cpl") >= SeverityLevel.MEDIUM.rank


def test_a_launch_with_a_big_budget_is_not_its_campaigns_spend_incident():
    ads = account(n_campaigns=2, ads_per_campaign=3, spend=100.0)
    launched = ad_history(seed=99, spend=400.0, cpm=35.0)
    launched.loc[launched["date"] < DAY, list(COUNT_COLUMNS)] = 0.0
    ads[("c0", "new")] = launched  # launched today: 4x the campaign's spend, learning CPM
    assert rank_alone(tree_of(ads), ("campaign", "c0"), "spend") >= SeverityLevel.MEDIUM.rank
    assert rank(judge(ads), "c0", "spend") < SeverityLevel.MEDIUM.rank


def test_an_ads_delivery_collapse_is_news_even_when_its_ad_set_is_normal():
    ads = account(n_campaigns=1, ads_per_campaign=6, spend=200.0)
    hit(ads[("c0", "a00")], spend=0.12, impressions=0.12, clicks=0.12, leads=0.12, reach=0.12)
    for ad in ("a01", "a02"):  # the budget went to two siblings: the ad set is normal
        hit(ads[("c0", ad)], spend=1.44, impressions=1.44, clicks=1.44, leads=1.44, reach=1.44)
    assert rank(judge(ads), "a00", "impressions") >= SeverityLevel.MEDIUM.rank


def test_common_factors_keep_clear_moves_and_conversions_only_within_the_band():
    from adsentinel.detect.statistical import MetricTest

    tests = [MetricTest("cpm", "nb_rate", 14.0, 10.0, 0, 0, z=5.0),
             MetricTest("ctr", "nb_rate", 0.011, 0.01, 0, 0, z=1.0),
             MetricTest("cpl", "nb_rate", 100.0, 10.0, 0, 0, z=9.0),
             MetricTest("spend", "robust_z+iqr", 250.0, 100.0, 0, 0, z=9.0),
             MetricTest("leads", "nb_rate_2d", 1.0, 10.0, 0, 0, z=-9.0)]
    # three other campaigns moved alike: CPL x10 is no market move, a pooled test no day's
    assert common_factors([tests, tests, tests]) == {"cpm": 1.4, "spend": 2.5}


def test_the_common_move_is_what_most_other_campaigns_did_not_their_sum():
    from adsentinel.detect.statistical import MetricTest

    def ctr(ratio, z):
        return [MetricTest("ctr", "nb_rate", 0.01 * ratio, 0.01, 0, 0, z=z)]

    # one large campaign's own CTR x3 (a new ad) among three quiet ones: no market move
    assert common_factors([ctr(3.0, 20.0), ctr(1.02, 0.3), ctr(0.97, -0.4), ctr(1.0, 0.1)]) == {}
    # most of them x1.5: the market's, at their median
    assert common_factors([ctr(1.4, 4.0), ctr(1.5, 5.0), ctr(1.6, 6.0), ctr(1.0, 0.1)]) == {
        "ctr": 1.5}
    assert common_factors([ctr(1.5, 5.0)]) == {}  # one other campaign is not an account


def test_one_campaigns_own_ctr_jump_does_not_make_the_others_look_broken():
    ads = account(n_campaigns=4, ads_per_campaign=2, spend=100.0)
    ads[("c0", "big")] = ad_history(seed=77, spend=3000.0, ctr=0.01)
    hit(ads[("c0", "big")], clicks=3.0, leads=3.0)  # c0's big ad: CTR x3, its own news
    found = judge(ads)
    others = [a for a in found if a.metric in ("ctr", "cpc") and a.severity.rank >= 1
              and not a.entity_id.startswith(("c0", "a0", "big"))]
    assert others == []


def test_parent_is_explained_only_when_little_is_left_and_few_ads_explain_it():
    one = [ChildMove("a", -9.0)]
    assert parent_is_explained(-10.0, -6.0, one, delivering_children=8, z_threshold=3.0)
    assert not parent_is_explained(-10.0, -40.0, one, delivering_children=8, z_threshold=3.0)
    assert not parent_is_explained(-10.0, -6.0, [ChildMove("a", -3.0)], 8, 3.0)
    assert not parent_is_explained(-10.0, -6.0, one, delivering_children=1, z_threshold=3.0)


def test_three_days_without_leads_on_a_small_ad_is_evidence_one_day_is_not():
    # ~4 leads a day: one day at zero happens by chance (p ~ 0.02); three in a row does not
    small = {("c0", "a00"): ad_history(spend=26.0, cpm=20.0, ctr=0.01, cvr=0.3, seed=5)}
    for offset in (0,):
        hit(small[("c0", "a00")], day=DAY - pd.Timedelta(days=offset), leads=0.0)
    one_day = judge(small)
    assert rank(one_day, "a00", "conversion_rate") < SeverityLevel.MEDIUM.rank
    for offset in (1, 2):
        hit(small[("c0", "a00")], day=DAY - pd.Timedelta(days=offset), leads=0.0)
    three_days = judge(small)
    pooled = worst(three_days, "a00", "conversion_rate")
    assert pooled is not None and pooled.severity.rank >= SeverityLevel.MEDIUM.rank
    assert "the last 3 days together" in pooled.message or "the last 4 days" in pooled.message


def two_ad_set_campaign(seed=0, spends=(150.0, 150.0)):
    """One campaign (CBO) > ad sets s1 (3 ads), s2 (3 ads), each ad at ``spends`` a day."""
    ads = {}
    for adset, spend in zip(("s1", "s2"), spends, strict=True):
        for a in range(3):
            ads[(adset, f"{adset}a{a}")] = ad_history(seed=seed + len(ads), spend=spend)
    frames, levels, parents, ids = {}, {}, {}, {}
    for (adset, ad), frame in ads.items():
        key = ("ad", ad)
        frames[key], levels[key], parents[key], ids[key] = frame, "ad", ("adset", adset), ad
    for adset in ("s1", "s2"):
        members = [f for (s, _a), f in ads.items() if s == adset]
        frames[("adset", adset)] = _sum(members)
        levels[("adset", adset)], parents[("adset", adset)] = "adset", ("campaign", "c")
        ids[("adset", adset)] = adset
    frames[("campaign", "c")] = _sum(list(ads.values()))
    levels[("campaign", "c")], parents[("campaign", "c")], ids[("campaign", "c")] = (
        "campaign", None, "c")
    return AccountTree(frames, levels, parents, ids)


def _sum(members):
    total = members[0].copy()
    for other in members[1:]:
        total[list(COUNT_COLUMNS)] = total[list(COUNT_COLUMNS)].add(other[list(COUNT_COLUMNS)])
    return total


def _scale_day(tree, keys, factor):
    for key in keys:
        hit(tree.frames[key], spend=factor, impressions=factor, clicks=factor, leads=factor,
            reach=factor)


def test_an_ad_sets_volume_moving_while_its_campaign_is_normal_is_budget_shifting():
    tree = two_ad_set_campaign(spends=(300.0, 60.0))
    s1 = [k for k in tree.frames if k[0] == "ad" and k[1].startswith("s1")]
    s2 = [k for k in tree.frames if k[0] == "ad" and k[1].startswith("s2")]
    _scale_day(tree, [*s1, ("adset", "s1")], 0.7)  # the platform moved 30 % of s1's spend to s2
    _scale_day(tree, [*s2, ("adset", "s2")], 2.5)
    found = judge_account_day(AnomalyDetector(), tree, DAY.date(), list(tree.frames))
    assert rank_alone(tree, ("adset", "s2"), "spend") >= SeverityLevel.MEDIUM.rank
    shifted = worst(found, "s2", "spend")
    assert shifted.severity.rank < SeverityLevel.MEDIUM.rank
    assert "budget moving between siblings" in shifted.message


def test_an_ads_spend_rising_with_its_ad_sets_budget_edit_is_the_ad_sets_move():
    tree = two_ad_set_campaign()
    _scale_day(tree, [("ad", "s1a0")], 2.5)  # the ad set's budget x2, this ad took more of it
    _scale_day(tree, [("ad", "s1a1"), ("ad", "s1a2")], 1.75)
    s1 = tree.frames[("adset", "s1")]
    s1[list(COUNT_COLUMNS)] = _sum([tree.frames[("ad", f"s1a{i}")] for i in range(3)])[
        list(COUNT_COLUMNS)]
    found = judge_account_day(AnomalyDetector(), tree, DAY.date(), list(tree.frames))
    ad = worst(found, "s1a0", "spend")
    assert ad is None or ad.severity.rank < SeverityLevel.MEDIUM.rank
    assert ad is None or "its ad set's spend rose" in ad.message


def test_an_ad_losing_seven_tenths_to_its_siblings_is_a_shift_not_a_collapse():
    ads = account(n_campaigns=1, ads_per_campaign=6, spend=200.0)
    hit(ads[("c0", "a00")], spend=0.3, impressions=0.3, clicks=0.3, leads=0.3, reach=0.3)
    for ad in ("a01", "a02"):
        hit(ads[("c0", ad)], spend=1.35, impressions=1.35, clicks=1.35, leads=1.35, reach=1.35)
    assert rank(judge(ads), "a00", "impressions") < SeverityLevel.MEDIUM.rank


def cheap_ad_stopped() -> AccountTree:
    """An account whose ad set c0 lost its cheap ad today (c0's CPM x4, each ad's as usual)."""
    ads = account(n_campaigns=3, ads_per_campaign=2, spend=100.0)
    ads[("c0", "a00")] = ad_history(seed=50, spend=200.0, cpm=8.0)  # cheap impressions
    ads[("c0", "a01")] = ad_history(seed=51, spend=30.0, cpm=40.0)  # dear ones
    hit(ads[("c0", "a00")], spend=0.0, impressions=0.0, clicks=0.0, leads=0.0, reach=0.0)
    return tree_of(ads)


def test_an_ad_set_whose_cheap_ad_stopped_is_its_mix_changing_not_a_price_rise():
    tree = cheap_ad_stopped()
    assert rank_alone(tree, ("adset", "c0"), "cpm") >= SeverityLevel.MEDIUM.rank  # CPM x4
    found = judge_account_day(AnomalyDetector(), tree, DAY.date(), list(tree.frames))
    mixed = worst(found, "c0", "cpm")
    assert mixed is None or mixed.severity.rank < SeverityLevel.MEDIUM.rank
    assert mixed is None or "the mix of its ads changed" in mixed.message


def test_an_ad_set_whose_ads_all_got_dearer_still_reports_its_cpm():
    ads = account(n_campaigns=3, ads_per_campaign=2, spend=100.0)
    ads[("c0", "a00")] = ad_history(seed=50, spend=200.0, cpm=8.0)
    ads[("c0", "a01")] = ad_history(seed=51, spend=30.0, cpm=40.0)
    for ad in ("a00", "a01"):  # both ads' CPM x2: the same mix, dearer
        hit(ads[("c0", ad)], impressions=0.5, clicks=0.5, leads=0.5, reach=0.5)
    assert rank(judge(ads), "c0", "cpm") >= SeverityLevel.MEDIUM.rank


def test_an_ads_spend_beyond_its_ad_sets_is_the_platform_moving_the_ad_sets_budget():
    ads = account(n_campaigns=3, ads_per_campaign=4, spend=100.0)
    hit(ads[("c0", "a00")], spend=3.0, impressions=3.0, clicks=3.0, leads=3.0, reach=3.0)
    for ad in ("a01", "a02", "a03"):  # ad set budget x1.4, most of it taken by a00
        hit(ads[("c0", ad)], spend=0.87, impressions=0.87, clicks=0.87, leads=0.87, reach=0.87)
    tree = tree_of(ads)
    assert rank_alone(tree, ("ad", "a00"), "spend") >= SeverityLevel.MEDIUM.rank
    found = judge_account_day(AnomalyDetector(), tree, DAY.date(), list(tree.frames))
    ad = worst(found, "a00", "spend")
    assert ad is None or ad.severity.rank < SeverityLevel.MEDIUM.rank
    assert ad is None or "its ad set's spend rose x1.4: judged there" in ad.message


def test_an_ad_set_whose_big_ad_was_paused_is_its_life_cycle_not_its_incident():
    ads = account(n_campaigns=3, ads_per_campaign=2, spend=100.0)
    ads[("c0", "a00")] = ad_history(seed=52, spend=400.0)
    hit(ads[("c0", "a00")], spend=0.0, impressions=0.0, clicks=0.0, leads=0.0, reach=0.0)
    tree = tree_of(ads)
    assert rank_alone(tree, ("adset", "c0"), "impressions") >= SeverityLevel.MEDIUM.rank
    # the paused ad is not judged today (its rows stop), one of the ad set's two ads
    found = judge_account_day(AnomalyDetector(), tree, DAY.date(),
                              [k for k in tree.frames if k != ("ad", "a00")])
    assert rank(found, "c0", "impressions") < SeverityLevel.MEDIUM.rank
    assert rank(found, "c0", "spend") < SeverityLevel.MEDIUM.rank


def test_spend_holding_a_new_level_is_reported_the_day_it_jumped_not_every_day_after():
    ads = account(n_campaigns=3, ads_per_campaign=3, spend=100.0)
    for (campaign, _ad), frame in ads.items():
        if campaign == "c0":  # the budget set x2.6 yesterday, and kept
            for day in (DAY - pd.Timedelta(days=1), DAY):
                hit(frame, day=day, spend=2.6, impressions=2.6, clicks=2.6, leads=2.6, reach=2.6)
    tree = tree_of(ads)
    yesterday = judge_account_day(AnomalyDetector(), tree, (DAY - pd.Timedelta(days=1)).date(),
                                  list(tree.frames))
    assert rank(yesterday, "c0", "spend") >= SeverityLevel.MEDIUM.rank
    today = judge_account_day(AnomalyDetector(), tree, DAY.date(), list(tree.frames))
    held = next(a for a in today if a.entity_type == "campaign" and a.metric == "spend")
    # still x2.6 its 7-day level: found, but low
    assert held.severity.rank < SeverityLevel.MEDIUM.rank
    assert "held at this level since yesterday" in held.message


def test_spend_still_climbing_on_the_second_day_is_reported_again():
    ads = account(n_campaigns=3, ads_per_campaign=3, spend=100.0)
    for (campaign, _ad), frame in ads.items():
        if campaign == "c0":  # x2.6 yesterday, x7 today: not a level that holds
            hit(frame, day=DAY - pd.Timedelta(days=1), spend=2.6, impressions=2.6, clicks=2.6,
                leads=2.6, reach=2.6)
            hit(frame, spend=7.0, impressions=7.0, clicks=7.0, leads=7.0, reach=7.0)
    assert rank(judge(ads), "c0", "spend") >= SeverityLevel.MEDIUM.rank


def test_spend_holding_a_jump_that_was_not_reported_is_reported_on_its_second_day():
    ads = account(n_campaigns=3, ads_per_campaign=1, spend=100.0)
    for (campaign, _ad), frame in ads.items():
        if campaign == "c0":  # x2.2 yesterday (a budget change, low), x2.5 today: past the band
            hit(frame, day=DAY - pd.Timedelta(days=1), spend=2.2, impressions=2.2, clicks=2.2,
                leads=2.2, reach=2.2)
            hit(frame, spend=2.5, impressions=2.5, clicks=2.5, leads=2.5, reach=2.5)
    tree = tree_of(ads)
    yesterday = judge_account_day(AnomalyDetector(), tree, (DAY - pd.Timedelta(days=1)).date(),
                                  list(tree.frames))
    assert rank(yesterday, "c0", "spend") < SeverityLevel.MEDIUM.rank
    assert rank(judge(ads), "c0", "spend") >= SeverityLevel.MEDIUM.rank


def test_a_pooled_rate_is_judged_against_each_pooled_days_own_common_move():
    from adsentinel.detect.statistical import run_statistical_tests

    # demand dipped account-wide for two days (conversion rate x0.6), then rebounded (x1.3);
    # this ad followed the dip but not the rebound: its -23 % today is worth a look, not
    # three days of -35 %
    frame = ad_history(seed=91, spend=3000.0)
    for back in (1, 2):
        hit(frame, day=DAY - pd.Timedelta(days=back), leads=0.6)
    history, today = frame.iloc[:-1], frame.iloc[-1]

    def conversion_rate(**moves):
        tests = run_statistical_tests(history, today, z_threshold=3.0, iqr_multiplier=1.5,
                                      common_move={"conversion_rate": 1.3}, **moves)
        return next(t for t in tests if t.metric == "conversion_rate")

    alone = conversion_rate()  # three days pooled against today's rebound alone
    assert alone.detector != "nb_rate" and alone.actual / alone.expected < 0.7
    judged = conversion_rate(earlier_common_moves=[{"conversion_rate": 0.6}] * 2)
    assert alone.z < -3.0  # past the threshold: an alarm
    assert judged.detector == "nb_rate" and judged.z > -2.0, judged  # today alone, no alarm


def test_pooled_common_factor_weighs_each_day_by_its_exposure():
    from adsentinel.detect.statistical import pooled_common_factor

    # a rate: the exposure-weighted mean; a cost: the weighted harmonic mean
    assert pooled_common_factor([100.0, 300.0], [2.0, 1.0], inverse=False) == 1.25
    assert pooled_common_factor([100.0, 300.0], [2.0, 1.0], inverse=True) == 400.0 / 350.0
    assert pooled_common_factor([100.0, 300.0, 50.0], [1.5], inverse=False) == (150 + 350) / 450


def test_a_common_move_is_a_majority_moving_together_not_each_clearly():
    from adsentinel.detect.common_move import COMMON_MOVE_ALPHA, majority_move_p_value
    from adsentinel.detect.statistical import MetricTest

    def cpm(ratio, z):
        return [MetricTest("cpm", "nb_rate", 10.0 * ratio, 10.0, 0, 0, z=z)]

    # two others x1.6 and x1.54, the second's own noise leaving it at z 1.9: the market's
    assert common_factors([cpm(1.6, 2.5), cpm(1.54, 1.9)]) == {"cpm": 1.57}
    # seven of twelve a little up, five quiet: more campaigns moving a little is evidence too
    assert common_factors([cpm(1.2, 1.8)] * 7 + [cpm(1.0, 0.1)] * 5) == {"cpm": 1.2}
    # one large campaign's own x3 among quiet ones is not a majority
    assert common_factors([cpm(3.0, 20.0), cpm(1.02, 0.3), cpm(0.97, -0.4)]) == {}
    # calibrated: on quiet days (independent z) a common move is declared at most alpha often
    # (one test per account: every campaign's z, its own included)
    rng = np.random.default_rng(7)
    for n in (2, 3, 5, 8, 13):
        z = rng.standard_normal((20_000, n))
        declared = np.mean([majority_move_p_value(row) <= COMMON_MOVE_ALPHA for row in z])
        assert declared <= 2 * COMMON_MOVE_ALPHA, (n, declared)


def test_every_campaign_votes_on_the_common_move_and_none_explains_itself():
    from adsentinel.detect.statistical import MetricTest

    def cpm(ratio, z):
        return [MetricTest("cpm", "nb_rate", 10.0 * ratio, 10.0, 0, 0, z=z)]

    # three campaigns' CPM up x1.5-1.6 together; the third's own noise leaves it at z 1.6: for
    # the first, the two others alone would be no evidence, the account is
    moves = common_moves({"a": cpm(1.6, 2.3), "b": cpm(1.56, 4.1), "c": cpm(1.52, 1.6)})
    assert moves == {"a": {"cpm": 1.54}, "b": {"cpm": 1.56}, "c": {"cpm": 1.58}}
    # one campaign's own x3 and one other's noise is no account move: no one is explained
    assert common_moves({"a": cpm(3.0, 12.0), "b": cpm(1.3, 2.0), "c": cpm(0.98, -0.2)}) == {
        "a": {}, "b": {}, "c": {}}


def test_the_forest_is_not_medium_on_a_parent_whose_metric_its_mix_of_ads_explains():
    """The forest is medium only beside a harmful metric anomaly of medium or worse; when the
    rules between levels demote that anomaly (here the ad set's CPM x4: its cheap ad stopped),
    the forest's "unusual combination" of the same day is at most low too."""
    tree = cheap_ad_stopped()
    key = ("adset", "c0")
    history = tree.frames[key][tree.frames[key]["date"] < DAY]
    forest = IsolationForest(n_estimators=100, random_state=0).fit(
        isolation_forest_features(prepare_daily_frame(history)))
    model = EntityModel(forest, forest.training_scores_)
    alone = AnomalyDetector().detect_anomalies(
        tree.frames[key], "adset", "c0", analysis_date=DAY.date(), model=forest,
        training_scores=forest.training_scores_)
    assert rank(alone, "c0", MULTIVARIATE) == SeverityLevel.MEDIUM.rank  # corroborated by CPM
    found = judge_account_day(AnomalyDetector(), tree, DAY.date(), list(tree.frames),
                              models={key: model})
    assert rank(found, "c0", "cpm") < SeverityLevel.MEDIUM.rank
    assert rank(found, "c0", MULTIVARIATE) == SeverityLevel.LOW.rank


def _budget_stepped(ads, campaign, first_day, days, factor):
    """Every count of ``campaign``'s ads times ``factor`` for ``days`` days from ``first_day``."""
    for (owner, _ad), frame in ads.items():
        if owner == campaign:
            for back in range(days):
                hit(frame, day=first_day + pd.Timedelta(days=back), spend=factor,
                    impressions=factor, clicks=factor, leads=factor, reach=factor)


def test_a_spend_step_the_account_makes_routinely_is_an_edit_not_a_typo():
    ads = account(n_campaigns=3, ads_per_campaign=3, spend=100.0)
    _budget_stepped(ads, "c0", DAY, 1, 2.6)  # today: x2.6 with efficiency unchanged
    plain = judge(ads)
    assert rank(plain, "c0", "spend") >= SeverityLevel.MEDIUM.rank  # a typo? on a quiet account
    # the same account, whose other campaigns had their budgets tripled for a week, twice
    _budget_stepped(ads, "c1", DAY - pd.Timedelta(days=40), 7, 3.0)
    _budget_stepped(ads, "c2", DAY - pd.Timedelta(days=25), 7, 3.0)
    habitual = judge(ads)
    spend = worst(habitual, "c0", "spend")
    assert spend.severity.rank < SeverityLevel.MEDIUM.rank
    # two steps, each seen on its campaign and on its ad set (both hold budgets)
    assert "stepped up this far 4 times in the last 90 days" in spend.message
