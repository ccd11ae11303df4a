"""What an anomaly costs, how long it has run, and what to do about it.

Pure: an anomaly's numbers in, money, dates and text out (no database, no settings). Detection
stores :func:`money_at_stake` and :func:`run_start` with each anomaly; the API, the CLI and the
exports show them with :func:`next_step`.

Money at stake (``impact_amount``), in the account's currency, on the anomaly's day, by kind
(:func:`anomaly_kind`):

=====================  =======================================  ================================
kind                   metric and direction                     formula
=====================  =======================================  ================================
``tracking_break``     CPL up, leads or conversion rate down,   the day's spend (spend that
                       with 0 leads on a day with spend         bought nothing)
``spend_spike``        spend up                                 actual spend - expected spend
``delivery_collapse``  spend or impressions down                expected spend not delivered:
                                                                spend: expected - actual;
                                                                impressions: (expected - actual)
                                                                x the day's spend per impression
``cost_rise``          CPL, CPC or CPM up                       (actual cost - expected cost)
                                                                x results (leads, clicks,
                                                                impressions / 1,000)
``ctr_drop``,          CTR or conversion rate down              spend x (1 - actual / expected):
``conversion_drop``                                             what the day's results cost
                                                                above their normal price
``lead_drop``          leads down (some leads)                  0: the money is on the CPL
``good_news``          :data:`GOOD_NEWS` (CPL down, frequency   0
                       down ...; not spend down)
``saturation``         frequency up                             none (no money formula)
``unusual_combination``  the isolation forest                   none (no money formula)
=====================  =======================================  ================================

Never negative. The cost formulas use the pooled rates of a test that pooled several days
(``actual``/``expected``) times the day's own results, so that consecutive days add up. The
three anomalies of one tracking break (CPL, leads, conversion rate) carry the same money: a total
over anomalies counts each entity-day once (:func:`total_at_stake`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from adsentinel.i18n import N_

#: the direction of a move that hurts the advertiser (as detect.statistical.HARMFUL_DIRECTION;
#: repeated here so that reading an anomaly does not import the statistics)
HARMFUL_DIRECTION: dict[str, str] = {
    "spend": "up", "impressions": "down", "leads": "down", "ctr": "down",
    "conversion_rate": "down", "cpc": "up", "cpm": "up", "cpl": "up", "frequency": "up",
}
MULTIVARIATE = "multivariate"
#: results a cost is paid per, and by how many of them the cost is quoted (CPM: per 1,000)
_COST_RESULTS = {"cpl": ("leads", 1.0), "cpc": ("clicks", 1.0), "cpm": ("impressions", 1000.0)}
#: the longest run looked back on (a run longer than this shows this many days)
MAX_RUN_DAYS = 90

KINDS = ("tracking_break", "spend_spike", "delivery_collapse", "cost_rise", "ctr_drop",
         "conversion_drop", "lead_drop", "saturation", "unusual_combination", "good_news")


#: (metric, direction) moves that are good news for the advertiser: CPL, CPC, CPM or frequency
#: down, CTR, conversion rate, leads or impressions up. Spend down is not among them: less
#: delivery than planned is lost delivery, not a saving.
GOOD_NEWS: frozenset[tuple[str, str]] = frozenset(
    (metric, "down" if harmful == "up" else "up")
    for metric, harmful in HARMFUL_DIRECTION.items() if metric != "spend")


def is_good_news(metric: str, direction: str) -> bool:
    """True when the move is good news (see :data:`GOOD_NEWS`): never an open incident."""
    return (metric, direction) in GOOD_NEWS


def anomaly_kind(metric: str, direction: str, drivers: Mapping[str, Any] | None) -> str:
    """The kind of incident an anomaly is (one of :data:`KINDS`).

    ``drivers`` are the stored counts of the day (``spend``, ``leads`` ...): zero leads with
    spend makes a CPL, leads or conversion-rate anomaly a tracking break.
    """
    if metric == MULTIVARIATE:
        return "unusual_combination"
    if is_good_news(metric, direction):
        return "good_news"
    counts = drivers or {}
    no_leads = _number(counts.get("leads")) == 0.0 and (_number(counts.get("spend")) or 0.0) > 0
    if metric in ("cpl", "leads", "conversion_rate") and no_leads:
        return "tracking_break"
    return {
        "spend": "spend_spike" if direction == "up" else "delivery_collapse",
        "impressions": "delivery_collapse", "cpl": "cost_rise",
        "cpc": "cost_rise", "cpm": "cost_rise", "ctr": "ctr_drop",
        "conversion_rate": "conversion_drop", "leads": "lead_drop", "frequency": "saturation",
    }.get(metric, "unusual_combination")


def money_at_stake(metric: str, direction: str, actual: float, expected: float,
                   drivers: Mapping[str, Any] | None) -> float | None:
    """Money at stake of one anomaly, in the account's currency (see the module's table).

    Parameters
    ----------
    metric, direction : str
        As stored (``"cpl"``, ``"up"``).
    actual, expected : float
        The metric's value and its expected value (pooled over the test's days for rates).
    drivers : mapping
        The day's counts: ``spend``, ``impressions``, ``clicks``, ``leads``.

    Returns
    -------
    float or None
        At least 0, rounded to cents; ``None`` for kinds without a money formula or when a
        number needed is missing or not finite.
    """
    kind = anomaly_kind(metric, direction, drivers)
    counts = drivers or {}
    spend = _number(counts.get("spend"))
    actual_f, expected_f = _number(actual), _number(expected)
    amount: float | None
    if kind == "good_news" or kind == "lead_drop":
        amount = 0.0
    elif kind in ("saturation", "unusual_combination"):
        amount = None
    elif kind == "tracking_break":
        amount = spend
    elif actual_f is None or expected_f is None:
        amount = None
    elif kind == "spend_spike":
        amount = actual_f - expected_f
    elif kind == "delivery_collapse":
        amount = _lost_delivery(metric, actual_f, expected_f, counts)
    elif kind == "cost_rise":
        results_column, per = _COST_RESULTS[metric]
        results = _number(counts.get(results_column))
        amount = None if results is None else (actual_f - expected_f) * results / per
    else:  # ctr_drop, conversion_drop
        amount = (None if spend is None or expected_f <= 0
                  else spend * (1.0 - actual_f / expected_f))
    if amount is None or not math.isfinite(amount):
        return None
    return round(max(amount, 0.0), 2)


def _lost_delivery(metric: str, actual: float, expected: float,
                   counts: Mapping[str, Any]) -> float | None:
    if metric == "spend":
        return expected - actual
    spend, impressions = _number(counts.get("spend")), _number(counts.get("impressions"))
    if spend is None or not impressions:
        return None  # no delivery at all that day: no price to value the lost impressions at
    return (expected - actual) * spend / impressions


def run_start(day: date, anomalous_days: Iterable[date], pooled_days: int = 1) -> date:
    """First day of the run of consecutive anomalous days that ends on ``day``.

    Parameters
    ----------
    day : date
        The anomaly's day (counted as anomalous whether or not it is in ``anomalous_days``).
    anomalous_days : iterable of date
        Other days with an anomaly of the same entity, metric and direction.
    pooled_days : int
        Days the test pooled (a rate judged over the last 3 days together started at least
        2 days before ``day``).

    Returns
    -------
    date
        At most :data:`MAX_RUN_DAYS` - 1 days before ``day``.
    """
    days = set(anomalous_days)
    start = day - timedelta(days=max(pooled_days, 1) - 1)
    earliest = day - timedelta(days=MAX_RUN_DAYS - 1)
    while start > earliest and (start - timedelta(days=1)) in days:
        start -= timedelta(days=1)
    return max(start, earliest)


def duration_days(started: date, day: date) -> int:
    """Days from ``started`` to ``day``, both counted (an anomaly of one day lasts 1)."""
    return (day - started).days + 1


#: what to do first, per kind; ``%(since)s`` is the run's first day, ``%(level)s`` the entity's
#: level (in the ``messages`` catalogs)
NEXT_STEPS: dict[str, str] = {
    "tracking_break": N_("Check the pixel and Conversions API events of this %(level)s since "
                         "%(since)s (Events Manager): spend goes on but no lead is recorded."),
    "spend_spike": N_("Check the budget edits of this %(level)s and of the ad set and campaign "
                      "above it since %(since)s (Ads Manager > History): a typo in a budget "
                      "or a bid?"),
    "delivery_collapse": N_("Check this %(level)s's review status (rejected or limited ad?) and "
                            "the account's billing and payment method since %(since)s."),
    "cost_rise": N_("Compare this %(level)s's CPM and CTR since %(since)s: a rising CPM points to "
                    "auction competition or a narrowed audience, a falling CTR to a tired "
                    "creative; check recent edits to its targeting and bid."),
    "ctr_drop": N_("Look at this %(level)s's creative and placement breakdown since %(since)s: "
                   "refresh a tired creative, or check a broken image, video or link."),
    "conversion_drop": N_("Open the landing page of this %(level)s and submit its form: check "
                          "that it loads fast and works, and what changed on it since %(since)s."),
    "lead_drop": N_("Check whether this %(level)s's delivery fell since %(since)s (the CPL is "
                    "normal) and its budget and schedule."),
    "saturation": N_("Widen this %(level)s's audience or rotate its creatives: the same people "
                     "have seen it too often since %(since)s."),
    "unusual_combination": N_("Review this %(level)s's metrics since %(since)s together: they "
                              "moved in a way this %(level)s has not seen before."),
    "good_news": N_("Nothing to fix: this moved the good way since %(since)s."),
}
_LEVEL_WORDS = {"campaign": N_("campaign"), "adset": N_("ad set"), "ad": N_("ad")}


def next_step(kind: str, *, level: str, since: date, translate: Any = None) -> str:
    """The next step for an anomaly of ``kind`` on an entity of ``level`` since ``since``.

    ``translate(message, **variables)`` is :meth:`adsentinel.i18n.Language.gettext` of the
    reader's language; English when omitted. Unknown kinds get the combination's step.
    """
    gettext = translate or _english
    template = NEXT_STEPS.get(kind, NEXT_STEPS["unusual_combination"])
    word = gettext(_LEVEL_WORDS.get(level, level))
    return gettext(template, level=word, since=since.isoformat())


def _english(message: str, **variables: object) -> str:
    return message % variables if variables else message


def total_at_stake(anomalies: Iterable[tuple[Any, date, float | None]]) -> float:
    """Money at stake of many anomalies, each entity-day counted once (its largest amount).

    ``anomalies`` are ``(entity_id, day, impact_amount)``; ``None`` amounts count 0.
    """
    largest: dict[tuple[Any, date], float] = {}
    for entity_id, day, amount in anomalies:
        key = (entity_id, day)
        largest[key] = max(largest.get(key, 0.0), amount or 0.0)
    return round(sum(largest.values()), 2)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
