"""The whole account's facts given to a chunk of it: the same verdicts as the whole account,
and the same facts after the trip through a task's JSON argument."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
from test_account_day import DAY, account, hit, tree_of

from adsentinel.detect.account_day import AccountTree, judge_account_day
from adsentinel.detect.account_facts import AccountFacts, account_facts, common_moves_by_day
from adsentinel.detect.anomaly_detector import AnomalyDetector
from adsentinel.detect.budget_habits import BudgetSteps


def _chunk(tree: AccountTree, campaigns: set[str], facts: AccountFacts | None) -> AccountTree:
    keep = [k for k in tree.frames if tree.campaign_of(k)[1] in campaigns]
    return AccountTree({k: tree.frames[k] for k in keep}, {k: tree.levels[k] for k in keep},
                       {k: tree.parents[k] for k in keep}, {k: tree.entity_ids[k] for k in keep},
                       whole_account=facts)


def _verdicts(found) -> set:
    return {(a.entity_type, a.entity_id, a.metric, a.severity.value) for a in found}


def test_a_chunk_given_the_whole_accounts_facts_judges_as_the_whole_account():
    """Every ad of six campaigns pays 1.6x its CPM: the market's move. A chunk of two
    campaigns alone sees one other campaign, too few to call the move common."""
    ads = account(n_campaigns=6, ads_per_campaign=2)
    for frame in ads.values():
        hit(frame, impressions=1 / 1.6)
    whole = tree_of(ads)
    detector = AnomalyDetector()
    everything = _verdicts(judge_account_day(detector, whole, DAY.date(), list(whole.frames)))
    facts = account_facts(detector, whole.campaign_frames, whole.budget_steps, [DAY.date()])
    by_chunk, alone = set(), set()
    for campaigns in ({"c0", "c1"}, {"c2", "c3"}, {"c4", "c5"}):
        given = _chunk(whole, campaigns, facts.for_campaigns(
            k for k in whole.campaign_frames if k[1] in campaigns))
        by_chunk |= _verdicts(judge_account_day(detector, given, DAY.date(), list(given.frames)))
        bare = _chunk(whole, campaigns, None)
        alone |= _verdicts(judge_account_day(detector, bare, DAY.date(), list(bare.frames)))
    assert by_chunk == everything
    assert not any(metric == "cpm" and severity != "low" for *_, metric, severity in everything)
    assert any(metric == "cpm" and severity != "low" for *_, metric, severity in alone)


def test_account_facts_survive_json():
    day = date(2026, 3, 9)
    facts = AccountFacts(
        BudgetSteps(np.array(["2026-03-01", "2026-03-04"], dtype="datetime64[D]"),
                    np.array([2.5, 3.1]), np.array([0.0, 1.2]),
                    np.array(["2026-03-01", "2026-03-02"], dtype="datetime64[D]"),
                    np.array([12, 11], dtype=np.int64)),
        {day: {day: {7: {"cpm": 1.6}, 8: {}}, date(2026, 3, 8): {7: {}}}})
    back = AccountFacts.from_jsonable(json.loads(json.dumps(facts.to_jsonable())))
    assert back.moves == {day: {day: {7: {"cpm": 1.6}}, date(2026, 3, 8): {}}}
    for name in ("days", "ratios", "previous", "delivery_days", "delivering_holders"):
        np.testing.assert_array_equal(getattr(back.budget_steps, name),
                                      getattr(facts.budget_steps, name))
    habits = back.budget_steps.habits(day, 30)
    assert habits.holder_months == 23 / 30 and habits.steps_at_least(3.0) == 1
    assert back.covers([day]) and not back.covers([day, date(2026, 3, 8)])
    assert facts.for_campaigns([8]).moves[day][day] == {8: {}}


def _approx_moves(ours: dict, reference: dict) -> bool:
    return ours.keys() == reference.keys() and all(
        ours[c].keys() == reference[c].keys()
        and all(np.isclose(ours[c][m], reference[c][m], rtol=1e-9) for m in reference[c])
        for c in reference)


def test_the_facts_are_the_per_day_common_moves_partial_days_at_their_hour():
    """The vectorised campaign tests give the moves the per-day tests give, for complete days
    and for a day whose rows were read at some hour (volumes against the share expected by
    then)."""
    ads = account(n_campaigns=5, ads_per_campaign=1)
    for frame in ads.values():
        hit(frame, impressions=1 / 1.5)
    tree = tree_of(ads)
    detector = AnomalyDetector()
    campaigns = tree.campaign_frames
    hours = {key: 15.0 for key in list(campaigns)[:3]}  # two campaigns complete, three partial
    facts = account_facts(detector, campaigns, tree.budget_steps, [DAY.date()],
                          {DAY.date(): hours})
    reference = common_moves_by_day(detector, campaigns, DAY.date(), {}, hours)
    for when, moves in reference.items():
        assert _approx_moves(facts.moves[DAY.date()][when], moves), when
    assert any(facts.moves[DAY.date()][DAY.date()].values())  # the CPM move was common
    complete = account_facts(detector, campaigns, tree.budget_steps, [DAY.date()])
    assert facts.moves[DAY.date()][DAY.date()] != complete.moves[DAY.date()][DAY.date()]
