"""Synthetic Meta ad accounts with injected, labelled incidents: the data of the demo and of the
project's own evaluation.

The generator is deterministic: the same :class:`GeneratorConfig` (seed included) gives the same
rows, byte for byte once written. Each account draws from its own child seed, so adding accounts
does not change the ones already there.

How a day of an ad is made
--------------------------
Every account is a hierarchy campaign > ad set > ad. For each ad and day the generator builds the
*latent* quantities (expected spend, CPM, CTR, conversion rate, frequency) as ``(ads, days)`` arrays
and then draws the counts from them, vectorised over the whole account:

* ``impressions ~ Poisson(spend * 1000 / CPM)``, ``clicks ~ Binomial(impressions, CTR)``,
  ``leads ~ Binomial(clicks, conversion rate)``, ``reach ~ Binomial(impressions, 1 / frequency)``;
  spend is the paced budget share with log-normal noise, and 0 on a day without impressions.
* The budget lives on the ad set and is shared by its delivering ads (winners take more). Budget
  changes are persistent steps (x0.5 to x2) with efficiency (CPM, CTR, conversion rate) unchanged:
  a new normal, not an incident, and never labelled.
* Weekly seasonality differs per account (a B2B account peaks on weekdays, a B2C one at weekends,
  with its own amplitude), plus per-campaign spend trends, a slow CPM trend per account, creative
  fatigue (CTR decays with ad age) and frequency that grows slowly with age (about 1.2 to 3).
* New ads start mid-period with a learning phase: the first 7 days have a higher CPM, a lower CTR
  and a much lower conversion rate (worse CPL), and spend ramps up over 3 days.
* Holidays of the account's country (Black Friday, Christmas, Carnival, bank holidays...;
  :mod:`adsentinel.evaluation.holidays`) move volume, CPM and conversion rate. They are
  real-world moves, not incidents, and are not labelled.
* Some ads stop for good (no rows after the last day) and some pause for a few days. A pause is a
  deliberate action: depending on the account's export it shows as missing rows or as rows with
  zero spend and zero impressions. An all-zero day is therefore never an incident here; an
  injected ``delivery_drop`` always leaves 5-30 % of the delivery.

Incidents
---------
Incidents are injected as multipliers on the latent quantities before the counts are drawn, on a
campaign (``campaign_wide``: every ad of the campaign at once), an ad set or an ad:

==========================  ========================================  =====================
kind                        injection                                 magnitude
==========================  ========================================  =====================
``tracking_broken``         conversion rate x0: leads 0, spend goes on 0.0
``spend_spike``             spend x2-4 (budget typo), efficiency same 2.0-4.0
``cpm_spike``               CPM x1.8-3 at same spend: impressions fall 1.8-3.0
``ctr_collapse``            CTR x0.2-0.45                             0.2-0.45
``delivery_drop``           spend and impressions x0.05-0.3           0.05-0.3
``conversion_rate_drop``    conversion rate x0.2-0.45                 0.2-0.45
``frequency_spike``         frequency x2-3.5 at same impressions      2.0-3.5
==========================  ========================================  =====================

Incidents last 1 to 14 days (a spend spike at most 4: a typo gets noticed); about one in ten
persists until the last day (never a spend spike, which would then be a budget change). Labels
are honest: an incident is only placed where

* its entity is stable from 7 days before its start to its end (no ad starting, stopping, pausing
  or learning, no budget change, no other incident within 7 days), so that the move is the
  incident's and the 7 days before it are a clean baseline; and
* its effect is detectable in principle by the day after it starts: for each metric listed in
  the label, ``|log factor|`` is at least ``min_detectability_z`` (4) times the metric's noise
  over the incident's first two days (Poisson noise of the counts that drive it, pooled over
  those days, plus the day-to-day noise of the rate); a ``tracking_broken`` needs at least
  4 expected leads a day. The primary metric of the kind must pass; secondary metrics (e.g.
  ``cpl:up`` of a CTR collapse) are listed only when they pass too.

Output (:func:`adsentinel.evaluation.dataset_files.write_dataset`)
-------------------------------------------------------------------
``insights.csv``
    :data:`INSIGHT_COLUMNS`, one row per ad and day, sorted by date; the canonical import
    format. Spend has two decimals, counts are integers.
``labels.csv``
    :data:`LABEL_COLUMNS`, one row per incident. ``entity_type`` is ``campaign`` (then
    ``campaign_wide`` is ``true``), ``adset`` or ``ad``; ``metrics`` lists the harmful moves
    expected, ``metric:direction`` joined by ``;`` (``leads:down;cpl:up``); ``magnitude`` is the
    injected factor; ``end_date`` is inclusive; ``n_ads`` counts the ads hit.
``events.csv``
    :data:`EVENT_COLUMNS`: what moves the data but is *not* an incident (budget changes with
    their factor, ad starts, stops and pauses, holidays), for analysing false alarms.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from adsentinel.errors import ConfigError
from adsentinel.evaluation.holidays import holiday_calendar

INSIGHT_COLUMNS: tuple[str, ...] = (
    "date", "account_id", "account_name", "currency", "campaign_id", "campaign_name",
    "adset_id", "adset_name", "ad_id", "ad_name", "spend", "impressions", "clicks", "leads",
    "reach",
)
LABEL_COLUMNS: tuple[str, ...] = (
    "incident_id", "account_id", "entity_type", "entity_id", "campaign_id", "adset_id", "ad_id",
    "kind", "start_date", "end_date", "days", "persists_to_end", "campaign_wide", "metrics",
    "magnitude", "n_ads", "description",
)
EVENT_COLUMNS: tuple[str, ...] = (
    "date", "account_id", "entity_type", "entity_id", "kind", "factor", "description",
)
INCIDENT_KINDS: tuple[str, ...] = (
    "tracking_broken", "spend_spike", "cpm_spike", "ctr_collapse", "delivery_drop",
    "conversion_rate_drop", "frequency_spike",
)
#: a fixed end date so that the default output is reproducible; it includes Black Friday.
DEFAULT_END_DATE = dt.date(2025, 12, 7)

LEARNING_DAYS = 7
BASELINE_DAYS = 7
MAX_INCIDENT_DAYS = 14
MIN_TRACKING_LEADS = 4.0
MAX_CELLS_PER_ACCOUNT = 5_000_000

# Day-to-day log-normal noise of each latent quantity (per ad and day).
_SIGMA_SPEND = 0.12
_SIGMA_CPM = 0.08
_SIGMA_MARKET = 0.04  # account-wide CPM shock of the day
_SIGMA_CTR = 0.08
_SIGMA_CVR = 0.10
_SIGMA_FREQUENCY = 0.04

# Per metric: the count whose Poisson noise limits it, and its extra log-scale daily noise.
_METRIC_NOISE: dict[str, tuple[str | None, float]] = {
    "spend": (None, _SIGMA_SPEND),
    "impressions": ("impressions", float(np.hypot(_SIGMA_SPEND, _SIGMA_CPM))),
    "reach": ("reach", float(np.hypot(_SIGMA_SPEND, _SIGMA_CPM))),
    "cpm": ("impressions", float(np.hypot(_SIGMA_CPM, _SIGMA_MARKET))),
    "clicks": ("clicks", float(np.sqrt(_SIGMA_SPEND**2 + _SIGMA_CPM**2 + _SIGMA_CTR**2))),
    "ctr": ("clicks", _SIGMA_CTR),
    "cpc": ("clicks", float(np.hypot(_SIGMA_CPM, _SIGMA_CTR))),
    "leads": ("leads", float(np.sqrt(_SIGMA_SPEND**2 + _SIGMA_CPM**2 + _SIGMA_CTR**2
                                     + _SIGMA_CVR**2))),
    "conversion_rate": ("leads", _SIGMA_CVR),
    "cpl": ("leads", float(np.sqrt(_SIGMA_CPM**2 + _SIGMA_CTR**2 + _SIGMA_CVR**2))),
    "frequency": ("reach", _SIGMA_FREQUENCY),
}


@dataclass(frozen=True)
class _KindSpec:
    """How an incident kind is injected and what it is expected to move."""

    magnitude: tuple[float, float]  # range of the injected factor
    levels: tuple[tuple[str, float], ...]  # entity level -> probability
    primary: str  # the metric that must be detectable
    # metric -> (direction, how the metric moves as a function of the factor m: exponent of m)
    moves: tuple[tuple[str, str, float], ...]
    can_persist: bool = True
    max_days: int = MAX_INCIDENT_DAYS


_KINDS: dict[str, _KindSpec] = {
    "tracking_broken": _KindSpec(
        (0.0, 0.0), (("campaign", 0.6), ("ad", 0.4)), "leads",
        (("leads", "down", 1.0), ("conversion_rate", "down", 1.0), ("cpl", "up", -1.0)),
    ),
    "spend_spike": _KindSpec(
        (2.0, 4.0), (("campaign", 0.4), ("adset", 0.6)), "spend",
        (("spend", "up", 1.0),), can_persist=False, max_days=4,
    ),
    "cpm_spike": _KindSpec(
        (1.8, 3.0), (("campaign", 0.5), ("adset", 0.2), ("ad", 0.3)), "cpm",
        (("cpm", "up", 1.0), ("impressions", "down", -1.0), ("cpc", "up", 1.0),
         ("leads", "down", -1.0), ("cpl", "up", 1.0)),
    ),
    "ctr_collapse": _KindSpec(
        (0.2, 0.45), (("campaign", 0.2), ("ad", 0.8)), "ctr",
        (("ctr", "down", 1.0), ("clicks", "down", 1.0), ("cpc", "up", -1.0),
         ("leads", "down", 1.0), ("cpl", "up", -1.0)),
    ),
    "delivery_drop": _KindSpec(
        (0.05, 0.3), (("campaign", 0.4), ("adset", 0.3), ("ad", 0.3)), "impressions",
        (("impressions", "down", 1.0), ("spend", "down", 1.0), ("leads", "down", 1.0)),
    ),
    "conversion_rate_drop": _KindSpec(
        (0.2, 0.45), (("campaign", 0.5), ("ad", 0.5)), "conversion_rate",
        (("conversion_rate", "down", 1.0), ("leads", "down", 1.0), ("cpl", "up", -1.0)),
    ),
    "frequency_spike": _KindSpec(
        (2.0, 3.5), (("adset", 0.6), ("ad", 0.4)), "frequency",
        (("frequency", "up", 1.0), ("reach", "down", -1.0)),
    ),
}


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that determines a synthetic dataset; equal configs give identical data.

    Parameters
    ----------
    seed : int
        Seed of the numpy ``Generator``; each account uses a child seed of it.
    accounts : int
        Number of ad accounts.
    ads_per_account : int
        Number of ads in each account; campaigns (1-4 ad sets) and ad sets (1-6 ads) are drawn
        around them.
    days : int
        Length of the period, ending on ``end_date`` (inclusive).
    end_date : datetime.date
        Last day of data. Defaults to a fixed date so that output is reproducible.
    incidents_per_100_ads : float
        Incidents to place per 100 ads of an account (rounded per account). Fewer are placed when
        an account has too few entities on which an incident is stable and detectable.
    min_detectability_z : float
        An incident's listed metric must move by at least this many daily noise standard
        deviations of that metric on that entity.
    min_history_days : int
        No incident starts before this many days of data.
    recent_incidents_per_account : int
        Incidents per account that start in the last two days and are still on at the end (so
        that a demo ending yesterday has something to find today); part of the incident count.
    """

    seed: int = 0
    accounts: int = 2
    ads_per_account: int = 20
    days: int = 120
    end_date: dt.date = DEFAULT_END_DATE
    incidents_per_100_ads: float = 15.0
    min_detectability_z: float = 4.0
    min_history_days: int = 14
    recent_incidents_per_account: int = 0

    def __post_init__(self) -> None:
        _require(isinstance(self.seed, int) and self.seed >= 0, "seed", self.seed,
                 "a non-negative integer")
        _require(1 <= self.accounts <= 1000, "accounts", self.accounts, "in [1, 1000]")
        _require(1 <= self.ads_per_account <= 100_000, "ads_per_account", self.ads_per_account,
                 "in [1, 100000]")
        _require(self.days >= self.min_history_days + BASELINE_DAYS
                 and self.days <= 3660, "days", self.days,
                 f"in [{self.min_history_days + BASELINE_DAYS}, 3660]")
        _require(isinstance(self.end_date, dt.date), "end_date", self.end_date, "a date")
        _require(0.0 <= self.incidents_per_100_ads <= 100.0, "incidents_per_100_ads",
                 self.incidents_per_100_ads, "in [0, 100]")
        _require(self.min_detectability_z > 0, "min_detectability_z", self.min_detectability_z,
                 "positive")
        _require(self.recent_incidents_per_account >= 0, "recent_incidents_per_account",
                 self.recent_incidents_per_account, ">= 0")
        _require(self.min_history_days >= BASELINE_DAYS, "min_history_days",
                 self.min_history_days, f">= {BASELINE_DAYS}")
        # an account is held as ~15 float arrays of shape (ads, days) while it is generated
        _require(self.ads_per_account * self.days <= MAX_CELLS_PER_ACCOUNT,
                 "ads_per_account x days", self.ads_per_account * self.days,
                 f"<= {MAX_CELLS_PER_ACCOUNT:,} (use more accounts for bigger files)")

    @property
    def start_date(self) -> dt.date:
        """First day of data."""
        return self.end_date - dt.timedelta(days=self.days - 1)


def _require(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ConfigError(f"generator parameter {name} must be {expected}, got {value!r}")


#: Named configurations. ``benchmark`` gives about a million rows for the import benchmark.
PRESETS: dict[str, GeneratorConfig] = {
    "demo": GeneratorConfig(accounts=2, ads_per_account=20, days=120, incidents_per_100_ads=20.0,
                            recent_incidents_per_account=1),
    "evaluation": GeneratorConfig(accounts=3, ads_per_account=150, days=60,
                                  incidents_per_100_ads=16.0),
    "benchmark": GeneratorConfig(accounts=4, ads_per_account=840, days=365,
                                 incidents_per_100_ads=5.0),
}


def preset_config(name: str, **overrides: object) -> GeneratorConfig:
    """The preset ``name`` with the given fields replaced (``None`` values are ignored)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    given: dict[str, Any] = {key: value for key, value in overrides.items() if value is not None}
    unknown = set(given) - set(GeneratorConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"unknown generator parameter(s): {', '.join(sorted(unknown))}")
    return replace(PRESETS[name], **given)


@dataclass
class SyntheticDataset:
    """A generated dataset: the daily rows, the incident labels and the unlabelled events.

    ``insights`` has :data:`INSIGHT_COLUMNS` (one row per ad and day, sorted by date, account,
    ad); ``labels`` has :data:`LABEL_COLUMNS` (one row per incident); ``events`` has
    :data:`EVENT_COLUMNS` (budget changes, ad starts / stops / pauses and holidays: deliberate or
    seasonal moves that are *not* incidents).
    """

    config: GeneratorConfig
    insights: pd.DataFrame
    labels: pd.DataFrame
    events: pd.DataFrame

    @property
    def n_ads(self) -> int:
        """Number of distinct ads with at least one row."""
        return int(self.insights["ad_id"].nunique())


# --------------------------------------------------------------------------------------------
# Account structure


@dataclass
class _Hierarchy:
    campaign_ids: np.ndarray
    campaign_names: np.ndarray
    adset_ids: np.ndarray
    adset_names: np.ndarray
    adset_campaign: np.ndarray  # campaign index of each ad set
    ad_ids: np.ndarray
    ad_names: np.ndarray
    ad_adset: np.ndarray  # ad set index of each ad
    ad_campaign: np.ndarray


@dataclass
class _Profile:
    account_id: str
    name: str
    currency: str
    country: str
    weekly_spend: np.ndarray  # (7,), Monday first, mean 1
    weekly_cpm: np.ndarray
    weekly_cvr: np.ndarray
    zero_rows_when_paused: bool


@dataclass
class _Lifecycle:
    start: np.ndarray  # first day index with a row
    stop: np.ndarray  # last day index with a row
    age0: np.ndarray  # age in days on day `start`
    pause_start: np.ndarray  # -1 when no pause
    pause_end: np.ndarray


@dataclass
class _Latent:
    """Latent daily quantities of every ad, shape (ads, days)."""

    spend: np.ndarray
    cpm: np.ndarray
    ctr: np.ndarray
    cvr: np.ndarray
    frequency: np.ndarray
    delivering: np.ndarray  # bool: the ad is on and may deliver
    has_row: np.ndarray  # bool: the day appears in the export
    stable: np.ndarray  # bool: delivering, out of learning, no lifecycle change
    budget_steps: np.ndarray  # bool: the ad's ad set budget changes on this day


@dataclass
class _AccountData:
    hierarchy: _Hierarchy
    profile: _Profile
    counts: dict[str, np.ndarray]
    has_row: np.ndarray
    labels: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


_ACCOUNT_WORDS = ("Acme", "Nova", "Bright", "Blue Harbor", "Summit", "Vila", "Green Leaf",
                  "Atlas", "Clara", "Northwind", "Solar", "Pinnacle", "Oak & Iron", "Lumen")
_ACCOUNT_TRADES = ("Dental", "Solar", "Realty", "Fitness", "Insurance", "Academy", "Clinic",
                   "Motors", "Home Services", "Legal", "Travel", "Finance")
_CAMPAIGN_THEMES = ("Lead Gen", "Prospecting", "Retargeting", "Brand", "Promo", "Webinar",
                    "Free Quote", "Evergreen", "Seasonal", "Test")
_AUDIENCES = ("Broad", "Lookalike 1%", "Lookalike 3%", "Interests", "Retargeting 30d",
              "Website Visitors", "Engaged 90d", "Advantage+")
_DEMOGRAPHICS = ("18-65+", "25-44", "25-54 F", "35-65+", "18-34", "25-44 M")
_CREATIVES = ("Video", "Carousel", "Static", "UGC", "Reel", "Testimonial", "Offer", "Story")
_CURRENCIES = (("USD", "US", 12.0), ("BRL", "BR", 25.0), ("EUR", "DE", 9.0), ("GBP", "GB", 8.0))


def _unique_ids(rng: np.random.Generator, n: int, low: int, high: int, taken: set[int],
                prefix: str = "") -> np.ndarray:
    """``n`` distinct digit-string ids in ``[low, high)``, none of them in ``taken``."""
    out: list[str] = []
    while len(out) < n:
        for value in rng.integers(low, high, size=n - len(out) + 4).tolist():
            if value not in taken and len(out) < n:
                taken.add(value)
                out.append(f"{prefix}{value}")
    return np.array(out, dtype=object)


def _build_hierarchy(rng: np.random.Generator, n_ads: int, taken: set[int]) -> _Hierarchy:
    """Campaigns of 1-4 ad sets of 1-6 ads, exactly ``n_ads`` ads in all."""
    adset_campaign: list[int] = []
    adset_sizes: list[int] = []
    remaining, campaign = n_ads, 0
    while remaining > 0:
        for _ in range(int(rng.integers(1, 5))):
            if remaining == 0:
                break
            size = min(remaining, int(rng.integers(1, 7)))
            adset_campaign.append(campaign)
            adset_sizes.append(size)
            remaining -= size
        campaign += 1
    n_campaigns, n_adsets = campaign, len(adset_sizes)
    ad_adset = np.repeat(np.arange(n_adsets), adset_sizes)
    adset_campaign_arr = np.array(adset_campaign)

    campaign_ids = _unique_ids(rng, n_campaigns, 23_850_000_000_000_000, 23_860_000_000_000_000,
                               taken)
    adset_ids = _unique_ids(rng, n_adsets, 23_850_000_000_000_000, 23_860_000_000_000_000, taken)
    ad_ids = _unique_ids(rng, n_ads, 23_850_000_000_000_000, 23_860_000_000_000_000, taken)
    campaign_names = np.array(
        [f"Leads | {rng.choice(_CAMPAIGN_THEMES)} | C{i + 1:02d}" for i in range(n_campaigns)],
        dtype=object)
    adset_names = np.array(
        [f"{rng.choice(_AUDIENCES)} - {rng.choice(_DEMOGRAPHICS)} #{i + 1}"
         for i in range(n_adsets)], dtype=object)
    ad_names = np.array(
        [f"{rng.choice(_CREATIVES)} {i + 1:03d} - v{int(rng.integers(1, 4))}"
         for i in range(n_ads)], dtype=object)
    return _Hierarchy(campaign_ids, campaign_names, adset_ids, adset_names, adset_campaign_arr,
                      ad_ids, ad_names, ad_adset, adset_campaign_arr[ad_adset])


def _weekly_profile(rng: np.random.Generator, peak: float, amplitude: float,
                    jitter: float) -> np.ndarray:
    """Seven multipliers (Monday first) with mean 1: a cosine around ``peak`` plus jitter."""
    days = np.arange(7)
    shape = 1.0 + amplitude * np.cos(2 * np.pi * (days - peak) / 7) + rng.normal(0, jitter, 7)
    shape = np.clip(shape, 0.3, None)
    return shape / shape.mean()


def _account_profile(rng: np.random.Generator, taken: set[int]) -> _Profile:
    """Identity, currency and weekly seasonality of one account (B2B weekday or B2C weekend)."""
    account_number = _unique_ids(rng, 1, 10**9, 10**15, taken)[0]
    currency, country, _ = _CURRENCIES[int(rng.integers(0, len(_CURRENCIES)))]
    b2b = bool(rng.random() < 0.5)
    if b2b:  # weekday peak (Tue-Wed), deep weekend trough
        peak, amplitude = rng.uniform(1.0, 2.5), rng.uniform(0.12, 0.3)
    else:  # weekend peak (Sat-Sun)
        peak, amplitude = rng.uniform(5.0, 6.5), rng.uniform(0.05, 0.2)
    weekly_spend = _weekly_profile(rng, peak, amplitude * 0.6, 0.02)
    weekly_cvr = _weekly_profile(rng, peak, amplitude, 0.03)
    weekly_cpm = _weekly_profile(rng, rng.uniform(0, 7), rng.uniform(0.02, 0.08), 0.01)
    name = f"{rng.choice(_ACCOUNT_WORDS)} {rng.choice(_ACCOUNT_TRADES)} {country}"
    return _Profile(f"act_{account_number}", name, currency, country, weekly_spend, weekly_cpm,
                    weekly_cvr, zero_rows_when_paused=bool(rng.random() < 0.5))


# --------------------------------------------------------------------------------------------
# Latent daily quantities


def _lifecycles(rng: np.random.Generator, n_ads: int, n_days: int) -> _Lifecycle:
    """When each ad starts, stops and pauses. A quarter of the ads start within the period."""
    new = rng.random(n_ads) < 0.25
    start = np.where(new, rng.integers(1, max(2, n_days - 2), n_ads), 0)
    age0 = np.where(new, 0, rng.integers(LEARNING_DAYS + 10, 240, n_ads))
    stops = rng.random(n_ads) < 0.12
    stop_day = start + 7 + (rng.random(n_ads) * (n_days - start - 7)).astype(int)
    stop = np.where(stops & (stop_day < n_days - 1), stop_day, n_days - 1)
    pauses = rng.random(n_ads) < 0.08
    pause_len = rng.integers(2, 9, n_ads)
    pause_start = start + LEARNING_DAYS + (rng.random(n_ads)
                                           * (stop - start - LEARNING_DAYS - pause_len)).astype(int)
    ok = pauses & (stop - start - LEARNING_DAYS - pause_len > 2)
    pause_start = np.where(ok, pause_start, -1)
    pause_end = np.where(ok, pause_start + pause_len - 1, -1)
    return _Lifecycle(start, stop, age0, pause_start, pause_end)


def _latent_quantities(rng: np.random.Generator, hierarchy: _Hierarchy, profile: _Profile,
                       life: _Lifecycle, dates: pd.DatetimeIndex,
                       holiday_effects: np.ndarray, events: list[dict]) -> _Latent:
    """Expected spend, CPM, CTR, conversion rate and frequency of every ad and day."""
    n_ads, n_days = len(hierarchy.ad_ids), len(dates)
    n_campaigns, n_adsets = len(hierarchy.campaign_ids), len(hierarchy.adset_ids)
    day = np.arange(n_days)
    dow = dates.day_of_week.to_numpy()
    volume, holiday_cpm, holiday_ctr, holiday_cvr = holiday_effects
    cpm_base = dict((c, cpm) for c, _, cpm in _CURRENCIES)[profile.currency]

    age = life.age0[:, None] + (day[None, :] - life.start[:, None])
    in_life = (day[None, :] >= life.start[:, None]) & (day[None, :] <= life.stop[:, None])
    paused = (day[None, :] >= life.pause_start[:, None]) & (day[None, :] <= life.pause_end[:, None])
    delivering = in_life & ~paused
    has_row = in_life if profile.zero_rows_when_paused else delivering
    learning = np.clip(1.0 - age / LEARNING_DAYS, 0.0, 1.0)  # 1 on the first day, 0 from day 7
    stable = delivering & (age >= LEARNING_DAYS + 3)

    budget, budget_steps = _adset_budgets(rng, hierarchy, n_days, events)
    budget *= profile.weekly_spend[dow][None, :] * volume[None, :]

    # The ad set budget is shared by its delivering ads; winners take more, learners ramp up.
    ad_weight = rng.lognormal(0.0, 1.0, n_ads)
    ramp = np.clip((age + 1.0) / 3.0, 0.25, 1.0)
    weight = ad_weight[:, None] * ramp * delivering
    adset_total = np.zeros((n_adsets, n_days))
    np.add.at(adset_total, hierarchy.ad_adset, weight)
    share = weight / np.where(adset_total > 0, adset_total, 1.0)[hierarchy.ad_adset]
    spend = budget[hierarchy.ad_adset] * share

    market = rng.lognormal(0.0, _SIGMA_MARKET, n_days)
    cpm_trend = rng.normal(0.0005, 0.001)
    cpm = (cpm_base * rng.lognormal(0.0, 0.3, n_campaigns)[hierarchy.ad_campaign][:, None]
           * rng.lognormal(0.0, 0.1, n_ads)[:, None]
           * (profile.weekly_cpm[dow] * holiday_cpm * market * np.exp(cpm_trend * day))[None, :]
           * (1.0 + 0.3 * learning)
           * rng.lognormal(0.0, _SIGMA_CPM, (n_ads, n_days)))

    fatigue = rng.uniform(0.0, 0.003, n_ads)
    ctr = (rng.lognormal(np.log(0.012), 0.4, n_ads)[:, None]
           * np.maximum(np.exp(-fatigue[:, None] * np.maximum(age, 0)), 0.5)
           * (1.0 - 0.2 * learning) * holiday_ctr[None, :]
           * rng.lognormal(0.0, _SIGMA_CTR, (n_ads, n_days)))

    cvr = (rng.lognormal(np.log(0.08), 0.4, n_campaigns)[hierarchy.ad_campaign][:, None]
           * rng.lognormal(0.0, 0.25, n_ads)[:, None]
           * (profile.weekly_cvr[dow] * holiday_cvr)[None, :]
           * (1.0 - 0.6 * learning)
           * rng.lognormal(0.0, _SIGMA_CVR, (n_ads, n_days)))

    f0 = rng.uniform(1.2, 1.8, n_ads)
    growth = rng.uniform(0.001, 0.006, n_ads)
    frequency = (np.minimum(f0[:, None] * (1.0 + growth[:, None] * np.maximum(age, 0)), 3.0)
                 * rng.lognormal(0.0, _SIGMA_FREQUENCY, (n_ads, n_days)))

    return _Latent(spend=spend, cpm=cpm, ctr=np.clip(ctr, 0.0, 0.5),
                   cvr=np.clip(cvr, 0.0, 0.9), frequency=np.maximum(frequency, 1.0),
                   delivering=delivering, has_row=has_row, stable=stable,
                   budget_steps=budget_steps[hierarchy.ad_adset])


def _adset_budgets(rng: np.random.Generator, hierarchy: _Hierarchy, n_days: int,
                   events: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Each ad set's daily budget (before weekday and holiday volume) and the days it was
    edited: tiny to large spenders, a slow trend per campaign, persistent budget steps (each
    step appended to ``events``)."""
    n_campaigns, n_adsets = len(hierarchy.campaign_ids), len(hierarchy.adset_ids)
    day = np.arange(n_days)
    account_scale = rng.lognormal(0.0, 0.8)
    campaign_budget = np.clip(rng.lognormal(np.log(120.0), 1.3, n_campaigns) * account_scale,
                              3.0, 30_000.0)
    campaign_trend = rng.normal(0.0, 0.002, n_campaigns)
    adset_weight = rng.lognormal(0.0, 0.6, n_adsets)
    campaign_weight_sum = np.bincount(hierarchy.adset_campaign, adset_weight, n_campaigns)
    adset_budget0 = campaign_budget[hierarchy.adset_campaign] * adset_weight / campaign_weight_sum[
        hierarchy.adset_campaign]
    budget = np.repeat(adset_budget0[:, None], n_days, axis=1)
    budget *= np.exp(campaign_trend[hierarchy.adset_campaign][:, None] * day[None, :])
    budget_steps = np.zeros((n_adsets, n_days), dtype=bool)
    for adset in range(n_adsets):
        for change_day in np.sort(rng.integers(7, n_days, rng.poisson(n_days / 75.0))):
            factor = float(rng.choice([0.5, 0.67, 0.8, 1.25, 1.5, 2.0]))
            budget[adset, change_day:] *= factor
            budget_steps[adset, change_day] = True
            events.append({"day": int(change_day), "entity_type": "adset",
                           "entity_id": hierarchy.adset_ids[adset], "kind": "budget_change",
                           "factor": factor,
                           "description": f"ad set daily budget x{factor:g} from this day on"})
    return budget, budget_steps


def _lifecycle_events(hierarchy: _Hierarchy, life: _Lifecycle, n_days: int) -> list[dict]:
    """Ad starts, stops and pauses as unlabelled events."""
    events = []
    for ad, ad_id in enumerate(hierarchy.ad_ids):
        if life.start[ad] > 0:
            events.append({"day": int(life.start[ad]), "entity_type": "ad", "entity_id": ad_id,
                           "kind": "ad_start", "factor": np.nan,
                           "description": f"new ad, learning phase for {LEARNING_DAYS} days"})
        if life.stop[ad] < n_days - 1:
            events.append({"day": int(life.stop[ad]) + 1, "entity_type": "ad", "entity_id": ad_id,
                           "kind": "ad_stop", "factor": np.nan,
                           "description": "ad turned off, no rows from this day on"})
        if life.pause_start[ad] >= 0:
            length = int(life.pause_end[ad] - life.pause_start[ad] + 1)
            events.append({"day": int(life.pause_start[ad]), "entity_type": "ad",
                           "entity_id": ad_id, "kind": "ad_pause", "factor": float(length),
                           "description": f"ad paused for {length} days"})
    return events


# --------------------------------------------------------------------------------------------
# Incidents


def _expected_counts(latent: _Latent) -> dict[str, np.ndarray]:
    """Noise-free expected daily counts of every ad, shape (ads, days)."""
    spend = latent.spend * latent.delivering
    impressions = spend * 1000.0 / latent.cpm
    clicks = impressions * latent.ctr
    return {"spend": spend, "impressions": impressions, "clicks": clicks,
            "leads": clicks * latent.cvr, "reach": impressions / latent.frequency}


def _detectable_metrics(kind: str, factor: float, daily: dict[str, float], first_days: int,
                        z_min: float) -> list[str]:
    """``metric:direction`` for each move of ``kind`` that is detectable on this entity.

    ``daily`` holds the entity's expected daily counts before the incident. Counts are pooled
    over the incident's first ``first_days`` days (at most two: the evaluation asks for
    detection no later than the day after the start).
    """
    spec = _KINDS[kind]
    if kind == "tracking_broken":  # a single day without leads must already be unusual
        if daily["leads"] < MIN_TRACKING_LEADS:
            return []
        return [f"{metric}:{direction}" for metric, direction, _ in spec.moves]
    baseline = {name: value * first_days for name, value in daily.items()}
    detectable = []
    for metric, direction, exponent in spec.moves:
        driver, sigma = _METRIC_NOISE[metric]
        effect = factor ** exponent
        variance = sigma**2
        if driver is not None:
            driver_factor = _driver_factor(kind, driver, factor)
            expected = baseline[driver] * min(1.0, driver_factor)
            if expected <= 0:
                continue
            variance += 1.0 / expected
        elif daily["spend"] < 1.0:
            continue
        if abs(np.log(effect)) >= z_min * np.sqrt(variance):
            detectable.append(f"{metric}:{direction}")
        elif metric == spec.primary:
            return []
    return detectable


def _driver_factor(kind: str, driver: str, factor: float) -> float:
    """How the count ``driver`` moves under an incident of ``kind`` with ``factor``."""
    if kind in ("spend_spike", "delivery_drop"):
        return factor
    if kind == "cpm_spike":
        return 1.0 / factor
    if kind == "ctr_collapse":
        return factor if driver in ("clicks", "leads") else 1.0
    if kind == "conversion_rate_drop":
        return factor if driver == "leads" else 1.0
    if kind == "frequency_spike":
        return 1.0 / factor if driver == "reach" else 1.0
    return 1.0


def _apply_incident(latent: _Latent, kind: str, ads: np.ndarray, start: int, end: int,
                    factor: float) -> None:
    """Multiply the latent quantity that ``kind`` breaks, in place."""
    window = (ads[:, None], np.arange(start, end + 1)[None, :])
    if kind in ("spend_spike", "delivery_drop"):
        latent.spend[window] *= factor
    elif kind == "cpm_spike":
        latent.cpm[window] *= factor
    elif kind == "ctr_collapse":
        latent.ctr[window] *= factor
    elif kind in ("conversion_rate_drop", "tracking_broken"):
        latent.cvr[window] *= factor
    elif kind == "frequency_spike":
        latent.frequency[window] *= factor
    else:  # pragma: no cover - kinds are a closed set
        raise ValueError(f"unknown incident kind {kind!r}")


def _draw_window(rng: np.random.Generator, spec: _KindSpec, n_days: int, min_history_days: int,
                 recent: bool) -> tuple[int, int]:
    """First and last day index of an incident; ``recent`` ones are still on at the last day.

    A persisting incident starts in the last three weeks, a recent one in the last two days.
    """
    last = n_days - 1
    if recent:
        return int(rng.integers(n_days - 2, n_days)), last
    duration = _draw_duration(rng, spec)
    if duration is None:
        return int(rng.integers(max(min_history_days, n_days - 21), n_days - 1)), last
    start = int(rng.integers(min_history_days, n_days))
    return start, min(start + duration - 1, last)


def _draw_duration(rng: np.random.Generator, spec: _KindSpec) -> int | None:
    """Incident length in days; ``None`` means it persists until the last day."""
    u = rng.random()
    if spec.can_persist and u < 0.1:
        return None
    if u < 0.35:
        return 1
    if u < 0.8:
        return int(rng.integers(2, min(5, spec.max_days) + 1))
    return int(rng.integers(min(6, spec.max_days), spec.max_days + 1))


def _place_incidents(rng: np.random.Generator, cfg: GeneratorConfig, hierarchy: _Hierarchy,
                     latent: _Latent, dates: pd.DatetimeIndex, holiday_days: set[int],
                     account_id: str, account_index: int) -> list[dict]:
    """Choose, check and inject this account's incidents; return their labels."""
    n_ads, n_days = latent.spend.shape
    target = round(cfg.incidents_per_100_ads * n_ads / 100.0)
    # Continue the cycle of kinds across accounts so that small datasets still mix kinds.
    kinds = [INCIDENT_KINDS[(account_index * target + i) % len(INCIDENT_KINDS)]
             for i in range(target)]
    rng.shuffle(kinds)
    busy = np.zeros((n_ads, n_days), dtype=bool)
    members = {
        "campaign": [np.flatnonzero(hierarchy.ad_campaign == c)
                     for c in range(len(hierarchy.campaign_ids))],
        "adset": [np.flatnonzero(hierarchy.ad_adset == s) for s in range(len(hierarchy.adset_ids))],
        "ad": [np.array([a]) for a in range(n_ads)],
    }
    expected = _expected_counts(latent)

    def place(kind: str, recent: bool, attempts: int = 1000) -> dict | None:
        """Inject one incident of ``kind`` on a clean, detectable spot; its label or None."""
        spec = _KINDS[kind]
        levels, weights = zip(*spec.levels, strict=True)
        for _ in range(attempts):
            level = str(rng.choice(levels, p=np.array(weights) / sum(weights)))
            entity = int(rng.integers(0, len(members[level])))
            start, end = _draw_window(rng, spec, n_days, cfg.min_history_days, recent)
            if start < cfg.min_history_days or start in holiday_days:
                continue
            candidates = members[level][entity]
            scope = np.flatnonzero(np.isin(hierarchy.ad_adset, hierarchy.ad_adset[candidates]))
            if not _window_is_clean(latent, busy, scope, candidates, start, end):
                continue
            # the entity's ads that deliver through the window (the others are absent from it)
            ads = candidates[latent.stable[candidates, start - BASELINE_DAYS:end + 1].all(axis=1)]
            base = slice(start - BASELINE_DAYS, start)
            daily = {name: float(values[ads, base].sum(axis=0).mean())
                     for name, values in expected.items()}
            factor = float(round(rng.uniform(*spec.magnitude), 3))
            metrics = _detectable_metrics(kind, factor, daily, min(2, end - start + 1),
                                          cfg.min_detectability_z)
            if not metrics:
                continue
            _apply_incident(latent, kind, ads, start, end, factor)
            busy[scope, max(0, start - BASELINE_DAYS):min(n_days, end + BASELINE_DAYS + 1)] = True
            return _label(kind, level, entity, ads, start, end, factor, metrics, hierarchy, dates,
                          account_id, n_days)
        return None

    labels: list[dict] = []
    recent_placed = 0
    for kind in kinds:
        label = None
        if recent_placed < cfg.recent_incidents_per_account:
            label = place(kind, recent=True, attempts=300)
            recent_placed += label is not None
        if label is None:  # not recent, or no recent spot for this kind: any time will do
            label = place(kind, recent=False)
        if label is not None:
            labels.append(label)
    return labels


def _window_is_clean(latent: _Latent, busy: np.ndarray, scope: np.ndarray, ads: np.ndarray,
                     start: int, end: int) -> bool:
    """True when nothing but the incident moves the entity from baseline start to ``end``.

    Every ad sharing a budget with the entity is either stable (delivering, out of learning) on
    every day of the window or absent on every day, no budget changes in the ad sets, no other
    incident nearby, and the entity itself delivers.
    """
    window = slice(start - BASELINE_DAYS, end + 1)
    stable = latent.stable[scope, window]
    delivering = latent.delivering[scope, window]
    steady = stable.all(axis=1) | ~delivering.any(axis=1)
    if not steady.all() or busy[scope, window].any():
        return False
    if not latent.stable[ads, window].all(axis=1).any():
        return False
    return not latent.budget_steps[scope, window].any()


def _label(kind: str, level: str, entity: int, ads: np.ndarray, start: int, end: int,
           factor: float, metrics: list[str], hierarchy: _Hierarchy, dates: pd.DatetimeIndex,
           account_id: str, n_days: int) -> dict:
    first_ad = int(ads[0])
    entity_id = {"campaign": hierarchy.campaign_ids, "adset": hierarchy.adset_ids,
                 "ad": hierarchy.ad_ids}[level][entity]
    where = {"campaign": "every ad of the campaign", "adset": "every ad of the ad set",
             "ad": "the ad"}[level]
    return {
        "account_id": account_id,
        "entity_type": level,
        "entity_id": entity_id,
        "campaign_id": hierarchy.campaign_ids[hierarchy.ad_campaign[first_ad]],
        "adset_id": hierarchy.adset_ids[hierarchy.ad_adset[first_ad]] if level != "campaign"
        else "",
        "ad_id": hierarchy.ad_ids[first_ad] if level == "ad" else "",
        "kind": kind,
        "start_date": dates[start].date().isoformat(),
        "end_date": dates[end].date().isoformat(),
        "days": end - start + 1,
        "persists_to_end": end == n_days - 1,
        "campaign_wide": level == "campaign",
        "metrics": ";".join(metrics),
        "magnitude": factor,
        "n_ads": len(ads),
        "description": f"{_DESCRIPTIONS[kind]} x{factor:g} on {where}",
    }


_DESCRIPTIONS = {
    "tracking_broken": "tracking broken: conversion rate",
    "spend_spike": "budget typo: spend",
    "cpm_spike": "auction pressure: CPM",
    "ctr_collapse": "creative stopped working: CTR",
    "delivery_drop": "delivery stalled: spend and impressions",
    "conversion_rate_drop": "landing page / form problem: conversion rate",
    "frequency_spike": "audience saturated: frequency",
}


# --------------------------------------------------------------------------------------------
# Sampling and assembly


def _sample_counts(rng: np.random.Generator, latent: _Latent) -> dict[str, np.ndarray]:
    """Draw one day's counts per ad from the latent quantities (Poisson / binomial)."""
    planned = latent.spend * latent.delivering * rng.lognormal(0.0, _SIGMA_SPEND,
                                                                latent.spend.shape)
    impressions = rng.poisson(planned * 1000.0 / latent.cpm)
    clicks = rng.binomial(impressions, latent.ctr)
    leads = rng.binomial(clicks, latent.cvr)
    reach = rng.binomial(impressions, 1.0 / latent.frequency)
    reach = np.where(impressions > 0, np.maximum(reach, 1), 0)
    spend = np.where(impressions > 0, np.maximum(np.round(planned, 2), 0.01), 0.0)
    return {"spend": spend, "impressions": impressions, "clicks": clicks, "leads": leads,
            "reach": reach}


def _generate_account(cfg: GeneratorConfig, seed: np.random.SeedSequence, index: int,
                      dates: pd.DatetimeIndex, taken: set[int]) -> _AccountData:
    rng = np.random.default_rng(seed)
    profile = _account_profile(rng, taken)
    hierarchy = _build_hierarchy(rng, cfg.ads_per_account, taken)
    life = _lifecycles(rng, cfg.ads_per_account, len(dates))
    holiday_effects, holidays = holiday_calendar(profile.country, dates)
    events: list[dict] = []
    latent = _latent_quantities(rng, hierarchy, profile, life, dates, holiday_effects, events)
    events += _lifecycle_events(hierarchy, life, len(dates))
    events += [{"day": day, "entity_type": "account", "entity_id": profile.account_id,
                "kind": f"holiday_{kind}", "factor": np.nan, "description": name}
               for day, name, kind in holidays]
    labels = _place_incidents(rng, cfg, hierarchy, latent, dates, {d for d, _, _ in holidays},
                              profile.account_id, index)
    counts = _sample_counts(rng, latent)
    for event in events:
        event["account_id"] = profile.account_id
    return _AccountData(hierarchy, profile, counts, latent.has_row, labels, events)


def _account_rows(data: _AccountData, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """The account's rows in :data:`INSIGHT_COLUMNS` order, sorted by day then ad."""
    day_index, ad_index = np.nonzero(data.has_row.T)
    h, p = data.hierarchy, data.profile
    date_strings = np.array(dates.strftime("%Y-%m-%d"), dtype=object)
    frame = pd.DataFrame({
        "date": date_strings[day_index],
        "account_id": p.account_id,
        "account_name": p.name,
        "currency": p.currency,
        "campaign_id": h.campaign_ids[h.ad_campaign[ad_index]],
        "campaign_name": h.campaign_names[h.ad_campaign[ad_index]],
        "adset_id": h.adset_ids[h.ad_adset[ad_index]],
        "adset_name": h.adset_names[h.ad_adset[ad_index]],
        "ad_id": h.ad_ids[ad_index],
        "ad_name": h.ad_names[ad_index],
    })
    for name in ("spend", "impressions", "clicks", "leads", "reach"):
        frame[name] = data.counts[name][ad_index, day_index]
    frame["_day"] = day_index
    return frame


def generate_dataset(config: GeneratorConfig) -> SyntheticDataset:
    """Generate the accounts of ``config``: insights rows, incident labels and events.

    Pure: no file is written (see :func:`adsentinel.evaluation.dataset_files.write_dataset`).
    """
    dates = pd.date_range(config.start_date, config.end_date, freq="D")
    taken: set[int] = set()
    seeds = np.random.SeedSequence(config.seed).spawn(config.accounts)
    accounts = [_generate_account(config, seed, i, dates, taken) for i, seed in enumerate(seeds)]

    insights = pd.concat([_account_rows(a, dates) for a in accounts], ignore_index=True)
    order = np.argsort(insights["_day"].to_numpy(), kind="stable")
    insights = insights.iloc[order].drop(columns="_day").reset_index(drop=True)

    label_rows = [label for a in accounts for label in a.labels]
    labels = pd.DataFrame(label_rows, columns=[c for c in LABEL_COLUMNS if c != "incident_id"])
    labels = labels.sort_values(["start_date", "account_id", "entity_id"], kind="stable")
    labels.insert(0, "incident_id", [f"inc_{i + 1:04d}" for i in range(len(labels))])
    labels = labels.reset_index(drop=True)

    event_rows = [event for a in accounts for event in a.events]
    events = pd.DataFrame(event_rows, columns=["day", *EVENT_COLUMNS[1:]])
    events.insert(0, "date", [dates[d].date().isoformat() for d in events["day"]])
    events = (events.drop(columns="day").sort_values(["date", "account_id", "kind", "entity_id"],
                                                      kind="stable")
              .reset_index(drop=True))
    return SyntheticDataset(config, insights, labels, events[list(EVENT_COLUMNS)])


def summarize(dataset: SyntheticDataset) -> dict[str, object]:
    """Counts that describe a dataset: rows, accounts, ads, days and incidents by kind."""
    kinds = dataset.labels["kind"].value_counts()
    return {
        "rows": len(dataset.insights),
        "accounts": int(dataset.insights["account_id"].nunique()),
        "campaigns": int(dataset.insights["campaign_id"].nunique()),
        "ads": dataset.n_ads,
        "days": dataset.config.days,
        "start_date": dataset.config.start_date.isoformat(),
        "end_date": dataset.config.end_date.isoformat(),
        "incidents": len(dataset.labels),
        "campaign_wide": int(dataset.labels["campaign_wide"].sum()) if len(dataset.labels) else 0,
        "incidents_by_kind": {kind: int(kinds.get(kind, 0)) for kind in INCIDENT_KINDS},
    }


__all__: Sequence[str] = (
    "DEFAULT_END_DATE", "EVENT_COLUMNS", "INCIDENT_KINDS", "INSIGHT_COLUMNS", "LABEL_COLUMNS",
    "PRESETS", "GeneratorConfig", "SyntheticDataset", "generate_dataset", "preset_config",
    "summarize",
)
