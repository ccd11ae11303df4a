"""What one metric's move means for the user: small named rules applied in order.

A metric test says how surprising a move is; these rules say what it is worth telling, in the
manner of Merlion's post-rule sequence. Each rule looks at one flagged test and the facts of the
day (:class:`DayFacts`) and returns a :class:`Verdict` when it applies:

1. :data:`CAP_RULES`, the first that applies wins: moves that are real but not an incident
   (harmless direction, a budget edit, an ad's spend (ads hold no budget), budget moving between
   sibling ads, spend holding a new level for a second day, a spend step of the size the
   account's budget holders make routinely, leads following
   delivery, frequency below its ideal) are capped at *low*, with a note saying why;
2. :data:`RAISE_RULES`: a combination that is an incident even though each test alone is weak
   (broken conversion tracking) is raised to at least *medium*;
3. :data:`SKIP_RULES`: a move not to judge at all yet (a volume drop early in a partial day).

Pure: tests and numbers in, verdicts out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from adsentinel.detect.budget_habits import BudgetHabits
from adsentinel.detect.calibration import LOW_CAP, SEVERITY_FLOORS, SeverityLevel
from adsentinel.detect.intraday import MIN_FRACTION_FOR_DROPS
from adsentinel.detect.statistical import MetricTest
from adsentinel.i18n import N_

#: Spend or delivery moving within this ratio of expected with efficiency unchanged looks like a
#: deliberate budget change (or budget shifting between sibling ads): at most *low*. Outside it
#: (spend above 2.25x: a typo; delivery below 35 %: a stall) the volume move is reported.
BUDGET_CHANGE_BAND = (0.35, 2.25)
#: How far a child's share of its budget holder's spend moves in a day at most, as a ratio:
#: a child whose spend rose no more than this beyond its holder's rise is taking its share of
#: the holder's budget edit.
SHARE_DRIFT = 1.5
#: Delivery below this share of normal while the budget holder is normal is a collapse (the ad
#: was rejected, billing failed, the audience ran out), not budget moving to siblings.
DELIVERY_COLLAPSE = 0.2
EFFICIENCY_METRICS = ("cpm", "cpc", "ctr", "cpl")

# What the rules' notes say (English, as stored with the anomaly; marked for the catalogs, so
# that :mod:`adsentinel.detect.sentences` tells the same note in the reader's language). Those
# that name the budget holder are keyed by its level; ``%(ratio)s`` is a ratio with one decimal.
HOLDER_CARRIES_SPEND_NOTE = {
    "ad set": N_("its ad set's spend is up too: the incident is the ad set's"),
    "campaign": N_("its campaign's spend is up too: the incident is the campaign's"),
}
HOLDER_BUDGET_EDIT_NOTE = {
    "ad set": N_("its ad set's spend rose x%(ratio)s too: its share of a budget change there"),
    "campaign": N_("its campaign's spend rose x%(ratio)s too: its share of a budget change "
                   "there"),
}
AD_SET_ROSE_NOTE = N_("its ad set's spend rose x%(ratio)s: judged there")
AD_SET_AS_USUAL_NOTE = N_("its ad set's spend is as usual: the ad set's budget moved towards "
                          "this ad")
SIBLING_BUDGET_SHIFT_NOTE = N_("the budget-holding parent is normal: budget moving between "
                               "siblings")
SPEND_LEVEL_HELD_NOTE = N_("spend has held at this level since yesterday: a new budget?")
BUDGET_CHANGE_NOTE = N_("budget change? CPM, CPC, CTR and CPL are normal")
BUDGET_TYPO_NOTE = N_("CPM, CPC, CTR and CPL are normal: a budget typo?")
BUDGET_HABIT_NOTE = {
    "one": N_("its account's budgets stepped up this far once in the last %(days)s days: a "
              "budget change?"),
    "many": N_("its account's budgets stepped up this far %(count)s times in the last %(days)s "
               "days: a budget change?"),
}
DELIVERY_BUDGET_CUT_NOTE = N_("CPM is normal: a budget cut or a shift between ads?")
LEADS_FOLLOW_DELIVERY_NOTE = N_("CPL is normal: fewer leads because of less delivery")
TRACKING_BREAK_NOTE = N_("delivery and clicks are normal: is conversion tracking broken?")


def _ratio_note(template: str, ratio: float) -> str:
    return template % {"ratio": f"{ratio:.1f}"}
VOLUME_METRICS = ("spend", "impressions", "leads")


@dataclass(frozen=True)
class DayFacts:
    """What the rules know of the day besides the test they judge."""

    by_metric: Mapping[str, MetricTest]
    flagged: frozenset[str]
    parent_spend_known: bool = False
    parent_volume_normal: bool = False
    parent_spend_anomaly_up: bool = False
    parent_level: str = "ad set"
    parent_spend_ratio: float = 1.0
    partial: bool = False
    day_fraction: float = 1.0
    frequency_ideal: float = 3.0
    target_leads: float = float("nan")
    previous_spend: float = float("nan")  # the day before's (complete) spend; NaN: unknown
    budget_habits: BudgetHabits | None = None  # the account's budget steps; None: unknown

    @property
    def harmful_efficiency(self) -> bool:
        """True when CPM, CPC, CTR or CPL moved the harmful way beyond the threshold."""
        return any(m in self.flagged and self.by_metric[m].harmful for m in EFFICIENCY_METRICS)

    @property
    def tracking_break(self) -> bool:
        """Zero leads on a day whose spend and impressions are normal, with leads, conversion
        rate and CPL each beyond the threshold: the signature of broken conversion tracking."""
        if self.target_leads != 0.0:
            return False
        if not {"leads", "conversion_rate", "cpl"} <= self.flagged:
            return False
        if not all(self.by_metric[m].harmful for m in ("cpl", "leads", "conversion_rate")):
            return False
        return not any(m in self.flagged for m in ("spend", "impressions"))


@dataclass(frozen=True)
class Verdict:
    """A rule's decision: the score at most ``cap`` / at least ``floor``, with a ``note``;
    ``skip`` drops the move."""

    cap: float | None = None
    floor: float | None = None
    note: str = ""
    skip: bool = False

    def apply(self, score: float) -> float:
        """``score`` within this verdict's cap and floor."""
        if self.cap is not None:
            score = min(score, self.cap)
        if self.floor is not None:
            score = max(score, self.floor)
        return score


Rule = Callable[[MetricTest, DayFacts], Verdict | None]


def harmless_direction(test: MetricTest, facts: DayFacts) -> Verdict | None:
    """CPL down, leads up, ...: good news is never more than low."""
    return None if test.harmful else Verdict(cap=LOW_CAP)


def ad_set_carries_spend(test: MetricTest, facts: DayFacts) -> Verdict | None:
    """Spend up while the budget holder's own spend is an anomaly: the holder's incident."""
    if test.metric == "spend" and facts.parent_spend_anomaly_up:
        return Verdict(cap=LOW_CAP, note=HOLDER_CARRIES_SPEND_NOTE[facts.parent_level])
    return None


def ads_hold_no_budget(test: MetricTest, facts: DayFacts) -> Verdict | None:
    """An ad's spend up while its ad set's spend is known: ads hold no budget (Meta sets it on
    the ad set, or on the campaign under campaign budget optimisation), so money spent beyond
    plan shows on the ad set and is judged there; an ad rising alone is the platform moving its
    ad set's budget towards it."""
    if test.metric == "spend" and facts.parent_level == "ad set" and facts.parent_spend_known:
        note = (_ratio_note(AD_SET_ROSE_NOTE, facts.parent_spend_ratio)
                if facts.parent_spend_ratio > 1.0 else AD_SET_AS_USUAL_NOTE)
        return Verdict(cap=LOW_CAP, note=note)
    return None


def holder_budget_edit(test: MetricTest, facts: DayFacts) -> Verdict | None:
    """Spend up along with its budget holder's (an edit there, within the budget band): the
    child's share of it, as long as its rise stays within :data:`SHARE_DRIFT` of the holder's."""
    ratio = facts.parent_spend_ratio
    if (test.metric == "spend" and 1.0 < ratio <= BUDGET_CHANGE_BAND[1] and test.expected > 0
            and test.actual / test.expected <= SHARE_DRIFT * ratio):
        return Verdict(cap=LOW_CAP,
                       note=_ratio_note(HOLDER_BUDGET_EDIT_NOTE[facts.parent_level], ratio))
    return None


def sibling_budget_shift(test: MetricTest, facts: DayFacts) -> Verdict | None:
    """Volume moving while the budget holder (an ad's ad set; an ad set's campaign, which holds
    the budget under campaign budget optimisation) is normal and efficiency unchanged is budget
    moving between siblings, unless its delivery collapsed below :data:`BUDGET_CHANGE_BAND` (rejected,
    billing, audience exhausted: its own news). A rise is never a collapse."""
    if (test.metric in ("spend", "impressions") and not facts.harmful_efficiency
            and facts.parent_volume_normal and not collapsed(test)):
        return Verdict(cap=LOW_CAP, note=SIBLING_BUDGET_SHIFT_NOTE)
    return None


def spend_level_held(test: MetricTest, facts: DayFacts) -> Verdict | None:
    """Spend up for a second day at the same level: yesterday was already beyond the normal
    range and today is within that range's width of yesterday. A budget set at a new level;
    the jump itself was reported the day it happened (a typo stays that one incident). Whether
    it was is the account's to check (:func:`~adsentinel.detect.account_day.judge_account_day`
    judges yesterday again when this rule applies, and takes it back when the jump was not
    reported); ``previous_spend`` is NaN when the rule is not to be used."""
    if (test.metric != "spend" or test.direction != "up" or test.expected <= 0
            or not np.isfinite(facts.previous_spend) or not np.isfinite(test.upper)):
        return None
    width = test.upper / test.expected  # how far above expected the normal range reaches
    yesterday = facts.previous_spend * facts.day_fraction / test.expected
    today = test.actual / test.expected
    if width > 1.0 and yesterday >= width and today > 0 and (
            abs(np.log(today / yesterday)) <= np.log(width)):
        return Verdict(cap=LOW_CAP, note=SPEND_LEVEL_HELD_NOTE)
    return None


def account_budget_habit(test: MetricTest, facts: DayFacts) -> Verdict | None:
    """Spend up beyond the budget band with efficiency normal, on an account whose budget
    holders step their spend up this far routinely (:meth:`BudgetHabits.usual`: reporting such
    steps at medium would cost more false alarms than medium may): an edit of the account's
    usual size, at most low."""
    if (test.metric != "spend" or test.direction != "up" or facts.harmful_efficiency
            or facts.budget_habits is None or test.expected <= 0):
        return None
    ratio = test.actual / test.expected
    if ratio <= BUDGET_CHANGE_BAND[1] or not facts.budget_habits.usual(ratio):
        return None
    return Verdict(cap=LOW_CAP, note=budget_habit_note(facts.budget_habits.steps_at_least(ratio),
                                                       facts.budget_habits.days))


def budget_habit_template(count: int) -> str:
    """The form of :data:`BUDGET_HABIT_NOTE` for ``count`` steps (its ``%(count)s`` and
    ``%(days)s`` to fill; English, the message catalogue translates it)."""
    return BUDGET_HABIT_NOTE["one" if count == 1 else "many"]


def budget_habit_note(count: int, days: int) -> str:
    """:data:`BUDGET_HABIT_NOTE` for ``count`` steps in ``days`` days (English, as stored)."""
    return budget_habit_template(count) % {"count": count, "days": days}


def spend_budget_change(test: MetricTest, facts: DayFacts) -> Verdict | None:
    """Spend up with efficiency normal: a budget edit up to x2.25 (low), a typo beyond it."""
    if test.metric != "spend" or facts.harmful_efficiency:
        return None
    if test.actual <= BUDGET_CHANGE_BAND[1] * test.expected:
        return Verdict(cap=LOW_CAP, note=BUDGET_CHANGE_NOTE)
    return Verdict(note=BUDGET_TYPO_NOTE)


def delivery_budget_cut(test: MetricTest, facts: DayFacts) -> Verdict | None:
    """Impressions down to no less than 35 % with CPM normal: a budget cut or shift (low)."""
    if (test.metric == "impressions" and not facts.harmful_efficiency
            and test.actual >= BUDGET_CHANGE_BAND[0] * test.expected):
        return Verdict(cap=LOW_CAP, note=DELIVERY_BUDGET_CUT_NOTE)
    return None


def leads_follow_delivery(test: MetricTest, facts: DayFacts) -> Verdict | None:
    """Fewer leads with CPL normal: less delivery, reported on delivery itself (low)."""
    cpl = facts.by_metric.get("cpl")
    if test.metric == "leads" and not ("cpl" in facts.flagged and cpl is not None and cpl.harmful):
        return Verdict(cap=LOW_CAP, note=LEADS_FOLLOW_DELIVERY_NOTE)
    return None


def frequency_below_ideal(test: MetricTest, facts: DayFacts) -> Verdict | None:
    """Frequency up but still at most its ideal: not yet saturation (low)."""
    if test.metric == "frequency" and test.actual <= facts.frequency_ideal:
        return Verdict(cap=LOW_CAP)
    return None


def tracking_break_floor(test: MetricTest, facts: DayFacts) -> Verdict | None:
    """The CPL move of a tracking break is at least medium (see :attr:`DayFacts.tracking_break`)."""
    if test.metric == "cpl" and facts.tracking_break:
        return Verdict(floor=SEVERITY_FLOORS[SeverityLevel.MEDIUM],
                       note=TRACKING_BREAK_NOTE)
    return None


def early_partial_drop(test: MetricTest, facts: DayFacts) -> Verdict | None:
    """A volume drop is not judged before :data:`MIN_FRACTION_FOR_DROPS` of a partial day."""
    if (facts.partial and test.metric in VOLUME_METRICS and test.direction == "down"
            and facts.day_fraction < MIN_FRACTION_FOR_DROPS):
        return Verdict(skip=True)
    return None


def collapsed(test: MetricTest) -> bool:
    """True when a volume fell below what a shift to siblings explains
    (:data:`DELIVERY_COLLAPSE`: delivery falling to a fifth overnight)."""
    return test.actual < DELIVERY_COLLAPSE * test.expected


CAP_RULES: tuple[Rule, ...] = (harmless_direction, ad_set_carries_spend, ads_hold_no_budget,
                               holder_budget_edit, sibling_budget_shift, spend_level_held,
                               account_budget_habit, spend_budget_change, delivery_budget_cut,
                               leads_follow_delivery, frequency_below_ideal)
RAISE_RULES: tuple[Rule, ...] = (tracking_break_floor,)
SKIP_RULES: tuple[Rule, ...] = (early_partial_drop,)


def judge_move(test: MetricTest, facts: DayFacts, score: float) -> tuple[float, str, str] | None:
    """``(score, note, rule)`` of a flagged test after the rules (``rule``: the name of the last
    rule that applied, ``""`` for none), or ``None`` when it is skipped."""
    note = applied = ""
    for rule in CAP_RULES:
        verdict = rule(test, facts)
        if verdict is not None:
            score, note, applied = verdict.apply(score), verdict.note, rule.__name__
            break
    for rule in RAISE_RULES:
        verdict = rule(test, facts)
        if verdict is not None:
            score, note, applied = verdict.apply(score), verdict.note, rule.__name__
    if any(rule(test, facts) is not None for rule in SKIP_RULES):
        return None
    return score, note, applied
