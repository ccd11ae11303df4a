"""An account's budget habits: spend steps of its budget holders, counted once, per
holder-month, in a window that ends before the judged step."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from adsentinel.detect.budget_habits import (
    HABIT_DAYS,
    MEDIUM_FALSE_ALARMS_PER_ENTITY_MONTH,
    BudgetHabits,
    budget_steps,
    spend_calendars,
    spend_step_ratios,
)

START = date(2026, 1, 1)


def calendar(n: int) -> np.ndarray:
    return np.arange(np.datetime64(START), np.datetime64(START) + n)


def test_a_step_is_spend_over_the_median_of_the_seven_days_before():
    spend = [10.0, 10, 10, 10, 10, 10, 50, 30, 30, 30]
    ratios = spend_step_ratios(spend)
    assert np.isnan(ratios[:5]).all()  # fewer than five days before
    assert ratios[5] == pytest.approx(1.0)
    assert ratios[6] == pytest.approx(5.0)  # one outlier does not move the median
    assert ratios[9] == pytest.approx(30 / 10)  # median of 10,10,10,10,50,30,30


def test_unknown_days_do_not_count_towards_the_baseline():
    spend = [10.0, np.nan, np.nan, np.nan, 10, 10, 10, 10, 10, 40]
    ratios = spend_step_ratios(spend)
    assert np.isnan(ratios[:9]).all()  # at most four known days among the seven before each
    assert ratios[9] == pytest.approx(4.0)


def test_a_budget_held_at_a_new_level_is_one_step():
    spend = [10.0] * 10 + [30.0] * 5
    steps = budget_steps([(calendar(15), spend)], at_least=2.0)
    habits = steps.habits(START + timedelta(days=30))
    assert habits.steps_at_least(3.0) == 1  # day 10 reached x3; days 11-14 were already there
    assert habits.steps_at_least(3.5) == 0


def test_the_judged_step_and_the_day_before_never_count():
    spend = [10.0] * 10 + [30.0]
    steps = budget_steps([(calendar(11), spend)], at_least=2.0)
    step_day = START + timedelta(days=10)
    assert steps.habits(step_day).steps_at_least(3.0) == 0
    assert steps.habits(step_day + timedelta(days=1)).steps_at_least(3.0) == 0
    assert steps.habits(step_day + timedelta(days=2)).steps_at_least(3.0) == 1
    assert steps.habits(step_day + timedelta(days=2 + HABIT_DAYS)).steps_at_least(3.0) == 0


def test_the_rate_is_per_holder_month_of_delivery():
    # two holders: one steps x3 twice in 60 days, the other never spends after day 30
    busy = ([10.0] * 10 + [30.0] * 10 + [10.0] * 10) * 2
    quiet = [10.0] * 30 + [0.0] * 30
    steps = budget_steps([(calendar(60), busy), (calendar(60), quiet)], at_least=2.0)
    habits = steps.habits(START + timedelta(days=61))  # days 0..59 in the window
    assert habits.steps_at_least(3.0) == 2
    assert habits.holder_months == pytest.approx((60 + 30) / 30)
    assert habits.rate_at_least(3.0) == pytest.approx(2 / 3)
    assert habits.usual(3.0) and not habits.usual(3.5)


def test_an_account_without_delivery_has_no_habits():
    empty = BudgetHabits(np.array([]), np.array([]), 0.0)
    assert empty.rate_at_least(2.0) == 0.0 and not empty.usual(2.0)
    assert budget_steps([], at_least=2.0).habits(START).steps_at_least(1.0) == 0


def test_usual_means_medium_would_cost_more_than_its_false_alarm_budget():
    months = 20.0
    just = int(np.ceil(MEDIUM_FALSE_ALARMS_PER_ENTITY_MONTH * months))
    habits = BudgetHabits(np.full(just, 3.0), np.zeros(just), months)
    fewer = BudgetHabits(np.full(just - 1, 3.0), np.zeros(just - 1), months)
    assert habits.usual(3.0) and not fewer.usual(3.0)


def test_the_window_is_the_detectors_history():
    spend = [10.0] * 10 + [30.0] * 5 + [10.0] * 45
    steps = budget_steps([(calendar(60), spend)], at_least=2.0)
    day = START + timedelta(days=60)
    assert steps.habits(day).steps_at_least(3.0) == 1  # day 10 is 50 days back
    shorter = steps.habits(day, days=30)
    assert shorter.steps_at_least(3.0) == 0 and shorter.days == 30
    assert shorter.holder_months == pytest.approx(30 / 30)


def test_holders_judged_together_step_as_each_alone():
    """All holders' series are judged end to end: no baseline reaches into another holder."""
    rng = np.random.default_rng(3)
    first = 100 * rng.lognormal(0, 0.1, 40)
    first[[12, 30]] *= 3
    second = 5 * rng.lognormal(0, 0.1, 25)  # small, right after a large holder
    second[[2, 9]] *= [40, 4]
    short = np.array([1.0, 9, 9, 9])  # too short for any baseline
    holders = [(calendar(40), first), (calendar(25), second), (calendar(4), short)]
    together = budget_steps(holders, at_least=2.25)
    alone = [budget_steps([holder], at_least=2.25) for holder in holders]
    np.testing.assert_array_equal(together.days, np.concatenate([a.days for a in alone]))
    np.testing.assert_array_equal(together.ratios, np.concatenate([a.ratios for a in alone]))
    np.testing.assert_array_equal(together.previous, np.concatenate([a.previous for a in alone]))
    assert len(together.days) == 3  # days 12 and 30 of the first, day 9 of the second
    assert together.delivering_holders.sum() == 40 + 25 + 4


def test_spend_calendars_fill_a_day_without_a_row_with_no_spend():
    ids = np.array([7, 7, 7, 9])
    days = np.array(["2026-01-01", "2026-01-02", "2026-01-05", "2026-01-03"],
                    dtype="datetime64[D]")
    (days_7, spend_7), (days_9, spend_9) = spend_calendars(ids, days, [1.0, 2.0, 5.0, 4.0])
    np.testing.assert_array_equal(days_7, calendar(5))
    np.testing.assert_array_equal(spend_7, [1.0, 2.0, 0.0, 0.0, 5.0])
    np.testing.assert_array_equal(days_9, np.array(["2026-01-03"], dtype="datetime64[D]"))
    np.testing.assert_array_equal(spend_9, [4.0])
