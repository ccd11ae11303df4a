"""Detection's sentence rebuilt from an anomaly's stored facts: in English it is byte for byte
what detection stored (on real detector output: a field world judged as production judges it,
forests and a partial day included), in Brazilian Portuguese it has no English left, and a
sentence the facts do not rebuild is shown as stored rather than mistranslated."""

from __future__ import annotations

import zlib
from collections import Counter

import pytest

from adsentinel.detect import metric_rules
from adsentinel.detect.account_day import EntityModel, judge_account_day
from adsentinel.detect.anomaly_detector import AnomalyDetector
from adsentinel.detect.features import isolation_forest_features
from adsentinel.detect.forest import IsolationForest
from adsentinel.detect.sentences import anomaly_sentence, localized_message
from adsentinel.detect.statistical import MetricTest
from adsentinel.evaluation.field_world import field_world_config, generate_field_world
from adsentinel.evaluation.walk import account_trees
from adsentinel.i18n import language

PT = language("pt_BR")
JUDGED_DAYS = 30
#: words of the English sentence that a Portuguese one must not hold
ENGLISH_WORDS = (" expected", " leads on", " clicks", "impressions", "together", "unusual",
                 "judged", "budget", "spend", "is normal", "are normal", "partial day",
                 "yesterday", "its ")


def facts(anomaly, currency="BRL"):
    return dict(metric=anomaly.metric, actual=anomaly.actual, expected=anomaly.expected,
                detectors="+".join(anomaly.detectors), drivers=anomaly.drivers,
                currency=currency, entity_type=anomaly.entity_type,
                is_partial_day=anomaly.is_partial_day)


@pytest.fixture(scope="module")
def judged():
    """Every anomaly of the demo field world's last days, judged as production judges them:
    forests fitted on the days before, the last day judged at 14:00 (a partial day)."""
    insights = generate_field_world(field_world_config(1, "demo")).insights
    tree = next(iter(account_trees(insights).values()))
    days = sorted(set().union(*(set(f["date"]) for f in tree.frames.values())))[-JUDGED_DAYS:]
    models = {}
    for key, frame in tree.frames.items():
        history = frame[frame["date"] < days[0]].tail(90)
        if len(history) >= 50:
            forest = IsolationForest(n_estimators=50, random_state=zlib.crc32(repr(key).encode()))
            forest.fit(isolation_forest_features(history))
            models[key] = EntityModel(forest, forest.training_scores_)
    detector, found = AnomalyDetector(), []
    for day in days:
        keys = [k for k, f in tree.frames.items() if f["date"].iloc[0] <= day <= f["date"].iloc[-1]]
        hours = {k: 14.0 for k in keys} if day == days[-1] else None
        found += judge_account_day(detector, tree, day.date(), keys, currency="BRL",
                                   models=models, as_of_hours=hours)
    return found


def test_english_is_what_detection_stored_on_real_detector_output(judged):
    kinds = Counter()
    for anomaly in judged:
        assert anomaly_sentence(**facts(anomaly)) == anomaly.message
        kinds[anomaly.drivers.get("rule", "none")] += 1
        kinds.update(k for k in ("explained_by_ads", "mix_changed") if k in anomaly.drivers)
        kinds.update(["partial"] * anomaly.is_partial_day + ["forest"] * (
            anomaly.metric == "multivariate"))
    # the world exercised the sentence's parts: rules' notes, parents, forests, a partial day
    assert len(judged) > 100
    for part in ("harmless_direction", "sibling_budget_shift", "delivery_budget_cut", "none",
                 "partial", "forest"):
        assert kinds[part] > 0, (part, kinds)


def test_english_of_a_parent_its_ads_explain_is_what_detection_stored():
    from test_account_day import DAY, account, ad_history, hit, tree_of  # on the path

    ads = account(n_campaigns=3, ads_per_campaign=2, spend=100.0)
    ads[("c0", "a00")] = ad_history(seed=52, spend=400.0)  # paused today: its parents drop
    hit(ads[("c0", "a00")], spend=0.0, impressions=0.0, clicks=0.0, leads=0.0, reach=0.0)
    tree = tree_of(ads)
    found = judge_account_day(AnomalyDetector(), tree, DAY.date(),
                              [k for k in tree.frames if k != ("ad", "a00")])
    explained = [a for a in found if "explained_by_ads" in a.drivers]
    assert explained
    for anomaly in explained:
        assert anomaly_sentence(**facts(anomaly)) == anomaly.message


def test_english_of_a_parent_whose_mix_changed_is_what_detection_stored():
    from test_account_day import DAY, cheap_ad_stopped  # on the path

    tree = cheap_ad_stopped()
    found = judge_account_day(AnomalyDetector(), tree, DAY.date(), list(tree.frames))
    mixed = [a for a in found if "mix_changed" in a.drivers]
    assert mixed
    for anomaly in mixed:
        assert anomaly_sentence(**facts(anomaly, currency="USD")) == anomaly.message
        assert "mix" not in anomaly_sentence(**facts(anomaly), lang=PT)


def test_portuguese_has_no_english_left_and_brazilian_numbers(judged):
    for anomaly in judged:
        told = anomaly_sentence(**facts(anomaly), lang=PT)
        assert told != anomaly.message
        assert not [w for w in ENGLISH_WORDS if w in told], (anomaly.message, told)
        assert localized_message(anomaly.message, lang=PT, **facts(anomaly)) == told
        assert localized_message(anomaly.message, lang=language("en"), **facts(anomaly)) == (
            anomaly.message)


def test_a_spend_rise_on_an_ad_reads_in_portuguese():
    stored = ("Spend $ 6.28 vs $ 1.79 expected (3.5x); its ad set's spend is as usual: the ad "
              "set's budget moved towards this ad")
    told = dict(metric="spend", actual=6.28, expected=1.79, detectors="nb_count",
                drivers={"spend": 6.28, "impressions": 900.0, "clicks": 12.0, "leads": 1.0,
                         "rule": "ads_hold_no_budget", "parent_level": "ad set",
                         "parent_spend_ratio": 1.0},
                currency="USD", entity_type="ad")
    assert anomaly_sentence(**told) == stored
    assert localized_message(stored, lang=PT, **told) == (
        "Valor usado US$ 6,28 vs. US$ 1,79 esperado (3,5x); o valor usado do seu conjunto de "
        "anúncios está normal: o orçamento do conjunto de anúncios foi direcionado a este anúncio")


@pytest.mark.parametrize("changed", [
    {"message": "Spend rose to $ 6.28 (3.5x expected)"},  # written by an older detector
    {"drivers": {"spend": 6.28}},  # stored before drivers held the counts
    {"drivers": {"spend": 6.28, "impressions": 9.0, "clicks": 1.0, "leads": 0.0,
                 "rule": "a_rule_not_known_here"}},
])
def test_a_sentence_the_facts_do_not_rebuild_is_shown_as_stored(changed):
    stored = ("Spend $ 6.28 vs $ 1.79 expected (3.5x): a budget typo?")
    told = dict(metric="spend", actual=6.28, expected=1.79, detectors="nb_count",
                drivers={"spend": 6.28, "impressions": 9.0, "clicks": 1.0, "leads": 0.0},
                currency="USD", entity_type="ad") | {k: v for k, v in changed.items()
                                                     if k != "message"}
    message = changed.get("message", stored)
    assert localized_message(message, lang=PT, **told) == message


def _test(metric="spend", actual=3.0, expected=1.0, upper=1.5):
    return MetricTest(metric=metric, detector="nb_count", actual=actual, expected=expected,
                      lower=0.5, upper=upper, z=5.0)


@pytest.mark.parametrize(("rule", "test", "day"), [
    ("ad_set_carries_spend", _test(), dict(parent_spend_anomaly_up=True, parent_level="campaign")),
    ("ad_set_carries_spend", _test(), dict(parent_spend_anomaly_up=True)),
    ("ads_hold_no_budget", _test(), dict(parent_spend_known=True, parent_spend_ratio=1.73)),
    ("ads_hold_no_budget", _test(), dict(parent_spend_known=True)),
    ("holder_budget_edit", _test(actual=2.0), dict(parent_spend_ratio=1.84)),
    ("holder_budget_edit", _test(actual=2.0), dict(parent_spend_ratio=1.84,
                                                   parent_level="campaign")),
    ("spend_budget_change", _test(actual=2.0), {}),
    ("spend_budget_change", _test(actual=3.0), {}),
    ("spend_level_held", _test(actual=2.0), dict(previous_spend=2.1)),
])
def test_every_rule_note_is_the_rules_own_english_and_has_portuguese(rule, test, day):
    verdict = getattr(metric_rules, rule)(test, metric_rules.DayFacts(
        by_metric={test.metric: test}, flagged=frozenset({test.metric}), **day))
    assert verdict is not None and verdict.note
    drivers = {"spend": 3.0, "impressions": 100.0, "clicks": 3.0, "leads": 1.0, "rule": rule,
               "parent_level": day.get("parent_level", "ad set"),
               "parent_spend_ratio": day.get("parent_spend_ratio", 1.0)}
    told = dict(metric=test.metric, actual=test.actual, expected=test.expected,
                detectors="nb_count", drivers=drivers, currency="USD", entity_type="ad")
    english = anomaly_sentence(**told)
    assert english.endswith("; " + verdict.note)
    portuguese = anomaly_sentence(**told, lang=PT)
    assert not [w for w in ENGLISH_WORDS if w in portuguese], portuguese


@pytest.mark.parametrize("steps", [1, 4])
def test_the_budget_habit_note_is_the_rules_own_english_and_has_portuguese(steps):
    import numpy as np

    from adsentinel.detect.budget_habits import BudgetHabits

    test = _test(actual=3.0)
    habits = BudgetHabits(np.full(steps, 3.5), np.zeros(steps), holder_months=1.0)
    verdict = metric_rules.account_budget_habit(test, metric_rules.DayFacts(
        by_metric={"spend": test}, flagged=frozenset({"spend"}), budget_habits=habits))
    assert verdict is not None and verdict.cap is not None
    drivers = {"spend": 3.0, "impressions": 100.0, "clicks": 3.0, "leads": 1.0,
               "rule": "account_budget_habit", "budget_steps": steps, "budget_days": 90}
    told = dict(metric="spend", actual=3.0, expected=1.0, detectors="nb_count",
                drivers=drivers, currency="USD", entity_type="adset")
    assert anomaly_sentence(**told).endswith("; " + verdict.note)
    assert ("once" in verdict.note) == (steps == 1)
    portuguese = anomaly_sentence(**told, lang=PT)
    assert "orçamentos da conta" in portuguese
    assert not [w for w in ENGLISH_WORDS if w in portuguese], portuguese


def test_the_other_notes_have_their_rules_english():
    """Notes without values, by rule name, as the rules write them."""
    cpl, leads = _test("cpl", 30.0, 10.0), _test("leads", 2.0, 10.0)
    impressions = _test("impressions", 500.0, 1000.0)
    day = metric_rules.DayFacts(by_metric={"cpl": cpl, "leads": leads}, flagged=frozenset())
    cases = {
        "sibling_budget_shift": metric_rules.sibling_budget_shift(
            impressions, metric_rules.DayFacts(by_metric={}, flagged=frozenset(),
                                               parent_volume_normal=True)),
        "delivery_budget_cut": metric_rules.delivery_budget_cut(impressions, day),
        "leads_follow_delivery": metric_rules.leads_follow_delivery(leads, day),
    }
    for rule, verdict in cases.items():
        drivers = {"spend": 3.0, "impressions": 500.0, "clicks": 3.0, "leads": 2.0, "rule": rule}
        metric = {"leads_follow_delivery": "leads"}.get(rule, "impressions")
        english = anomaly_sentence(metric=metric, actual=500.0, expected=1000.0,
                                   detectors="nb_count", drivers=drivers, currency="USD",
                                   entity_type="ad")
        assert english.endswith("; " + verdict.note), rule


def test_a_tracking_break_and_a_frequency_read_in_portuguese():
    drivers = {"spend": 320.0, "impressions": 40000.0, "clicks": 500.0, "leads": 0.0,
               "expected_leads": 22.4, "rule": "tracking_break_floor"}
    told = dict(metric="cpl", actual=float("inf"), expected=14.2, detectors="nb_rate",
                drivers=drivers, currency="BRL", entity_type="ad")
    assert anomaly_sentence(**told) == (
        "CPL undefined: 0 leads on R$ 320.00 of spend (CPL R$ 14.20 expected, ~22 leads); "
        "delivery and clicks are normal: is conversion tracking broken?")
    assert anomaly_sentence(**told, lang=PT) == (
        "CPL indefinido: 0 leads com R$ 320,00 de valor usado (CPL de R$ 14,20 esperado, ~22 "
        "leads); veiculação e cliques estão normais: o rastreamento de conversões está quebrado?")
    frequency = dict(metric="frequency", actual=4.5, expected=2.0, detectors="nb_rate_3d",
                     drivers={"spend": 1.0, "impressions": 9.0, "clicks": 1.0, "leads": 0.0,
                              "frequency_ideal": 3.0}, currency="BRL", entity_type="ad")
    assert anomaly_sentence(**frequency) == (
        "Frequency 4.50 vs 2.00 expected (2.2x): ideal is at most 3 (the last 3 days together)")
    assert anomaly_sentence(**frequency, lang=PT) == (
        "Frequência 4,50 vs. 2,00 esperado (2,2x): o ideal é no máximo 3 (os últimos 3 dias "
        "juntos)")
