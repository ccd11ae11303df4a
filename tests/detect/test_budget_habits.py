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
