"""The *field* world: a second, independent labelled generator of Meta Ads daily insights.

The lab generator (:mod:`adsentinel.evaluation.lab_world`) and the detector were tuned side by side;
this world is written from a list of phenomena seen in real accounts, with every assumption drawn
per seed (and per account) from a wide range, so that no single tuning fits every seed. It writes
the same three files in the same format as the lab
(:func:`adsentinel.evaluation.dataset_files.write_dataset`).

Phenomena
---------
1. Budgets at ad set level (ABO) and at campaign level (CBO); the platform shifts spend between
   ads, and between ad sets under CBO, day to day; winners take more, shares drift.
2. Budget edits, mostly x0.5 to x2 and persistent, sometimes deliberate scale-ups (x2 to x4),
   partly effective on the day of the edit.
3. Ads and ad sets launching into running campaigns with a learning phase (higher CPM, lower CTR
   and conversion rate, ramping spend); now and then a launch with a large budget that takes its
   campaign's spend to x2.5-3.5. Ads stopping and pausing.
4. Account-wide shocks on undeclared days: a holiday-like demand move and an auction-wide CPM rise
   (spend and CPM up together across the account), neither an incident; a site outage that loses
   every conversion of an account for a day, labelled ``tracking_broken`` on every campaign.
5. Persistent AR(1) noise in CPM (an account part and an ad set part), day-of-week seasonality
   with a per-account shape and amplitude, slow trends, creative fatigue, CPM rising with scale.
6. Overdispersed counts (beta-binomial clicks, gamma-Poisson leads) and a wide spread of volumes.
7. Incidents of every kind in :data:`FIELD_WORLD_KINDS`, at ad, ad set and campaign level, weak
   ones included, all labelled, kept apart from other incidents of the same entity tree.
8. Paused and stopped ads leave either no rows or zero rows.

Output
------
:func:`generate_field_world` returns a :class:`adsentinel.evaluation.lab_world.SyntheticDataset`
whose frames have exactly ``INSIGHT_COLUMNS``, ``LABEL_COLUMNS`` and ``EVENT_COLUMNS``. Events use
the lab's kinds (``budget_change``, ``ad_start``, ``ad_stop``, ``ad_pause``) plus
``account_shock``; an ad set launch is an ``ad_start`` event with ``entity_type`` ``adset``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from adsentinel.errors import ConfigError
from adsentinel.evaluation.lab_world import (
    EVENT_COLUMNS,
    INCIDENT_KINDS,
    INSIGHT_COLUMNS,
    LABEL_COLUMNS,
    SyntheticDataset,
)

FIELD_WORLD_KINDS: tuple[str, ...] = (*INCIDENT_KINDS, "joint_drift")

#: a fixed last day, so that the output is reproducible.
DEFAULT_END_DATE = dt.date(2026, 3, 29)
DAYS = 90
#: the first days are history: no incident starts in them.
HISTORY_DAYS = 30
SIZES = ("demo", "evaluation")

LEVELS = ("ad", "adset", "campaign")

#: the harmful moves each kind is expected to cause (the label's ``metrics``).
KIND_METRICS: dict[str, str] = {
    "tracking_broken": "leads:down;conversion_rate:down;cpl:up",
    "spend_spike": "spend:up",
    "cpm_spike": "cpm:up;impressions:down;cpc:up;cpl:up",
    "ctr_collapse": "ctr:down;clicks:down;cpc:up;cpl:up",
    "delivery_drop": "spend:down;impressions:down;leads:down",
    "conversion_rate_drop": "conversion_rate:down;leads:down;cpl:up",
    "frequency_spike": "frequency:up;reach:down",
    "joint_drift": "ctr:down;cpc:up;conversion_rate:down",
}

#: (shortest, longest) duration in days of each kind.
KIND_DAYS: dict[str, tuple[int, int]] = {
    "tracking_broken": (1, 10),
    "spend_spike": (1, 3),
    "cpm_spike": (1, 7),
    "ctr_collapse": (1, 10),
    "delivery_drop": (2, 5),
    "conversion_rate_drop": (1, 10),
    "frequency_spike": (2, 10),
    "joint_drift": (3, 10),
}

#: (lowest, highest) injected factor of each kind (tracking_broken: the share of leads kept).
KIND_MAGNITUDE: dict[str, tuple[float, float]] = {
    "tracking_broken": (0.0, 0.12),
    "spend_spike": (2.5, 5.0),
    "cpm_spike": (1.5, 3.0),
    "ctr_collapse": (0.2, 0.6),
    "delivery_drop": (0.05, 0.2),
    "conversion_rate_drop": (0.2, 0.6),
    "frequency_spike": (1.8, 3.0),
    "joint_drift": (0.7, 0.8),  # the CTR factor; CPC x1.2-1.3 and conversion rate x0.7-0.8
}

#: days kept free between two incidents of one entity tree (entity, its ancestors, descendants).
INCIDENT_GAP_DAYS = 3


@dataclass(frozen=True)
class _SizeRanges:
    accounts: tuple[int, int]
    ads: tuple[int, int]
    incidents: tuple[int, int]


_SIZE_RANGES: dict[str, _SizeRanges] = {
    "evaluation": _SizeRanges(accounts=(2, 3), ads=(160, 240), incidents=(15, 25)),
    "demo": _SizeRanges(accounts=(1, 1), ads=(36, 44), incidents=(8, 12)),
}


@dataclass(frozen=True)
class AccountAssumptions:
    """The assumptions of one account, drawn per seed from wide ranges (see the module doc).

    Rates are per 30 days; factors multiply a metric; ``*_sd`` are standard deviations of logs.
    """

    n_ads: int                        # ads over the 90 days, launches included
    currency: str
    daily_budget: float               # sum of the starting budgets of the account
    cbo_share: float                  # probability that a campaign holds the budget (CBO)
    campaign_budget_alpha: float      # Dirichlet concentration of budgets over campaigns
    cpm_median: float
    ctr_median: float
    cvr_median: float                 # leads / clicks
    ad_quality_sd: float              # spread of CPM, CTR and conversion factors between ads
    winner_gain: float                # how strongly spend follows an ad's quality
    share_drift_sd: float             # daily drift of an ad's (and a CBO ad set's) share
    cpm_ar_coef: float                # AR(1) coefficient of the CPM noise
    cpm_noise_sd: float               # stationary standard deviation of the CPM noise
    cpm_noise_account_part: float     # share of that variance common to the whole account
    cpm_trend_per_day: float
    cvr_trend_per_day: float
    cpm_scale_elasticity: float       # CPM x (spend / starting budget) ** elasticity
    rate_noise_sd: float              # daily noise of CTR and conversion rate
    click_dispersion: float           # beta-binomial: CTR ~ Beta(k, k (1 - p) / p), lower = wider
    lead_dispersion: float            # gamma-Poisson shape k, lower = more overdispersed
    weekday_spend: tuple[float, ...]  # Monday first
    weekday_cpm: tuple[float, ...]
    weekday_cvr: tuple[float, ...]
    pacing_mean: float                # delivered spend / budget
    pacing_sd: float
    frequency_base: float
    frequency_growth: float           # relative growth of (frequency - 1) per 30 days of age
    fatigue_rate: float               # CTR decay per day after the onset
    fatigue_onset_days: int
    learning_days: int
    learning_cpm_premium: float
    learning_ctr_penalty: float
    learning_cvr_penalty: float
    budget_edits_per_month: float     # per budget holder
    scale_up_share: float             # share of the edits that are deliberate scale-ups
    ad_launches_per_month: float
    adset_launches_per_month: float
    big_launch: bool
    stops_per_month: float
    pauses_per_month: float
    zero_row_share: float             # paused / stopped ads: zero rows rather than no rows
    delivery_reflow: float            # share of a dropped ad's spend its siblings pick up
    demand_moves: int
    auction_rises: int
    site_outage: bool


@dataclass(frozen=True)
class FieldWorldConfig:
    """Everything that determines a field world; equal configs give identical data."""

    seed: int
    size: str
    end_date: dt.date
    days: int
    history_days: int
    n_incidents: int                        # target number of labels
    level_mix: tuple[float, float, float]   # ad, adset, campaign
    kind_weights: tuple[float, ...]         # over FIELD_WORLD_KINDS, beyond one of each
    persist_share: float                    # share of incidents still running on the last day
    accounts: tuple[AccountAssumptions, ...] = field(default_factory=tuple)
    #: False leaves out the auction-wide CPM rises and demand moves (not the site outages,
    #: which are incidents) and changes nothing else: to measure what they cost.
    unlabelled_shocks: bool = True

    @property
    def start_date(self) -> dt.date:
        """First day of data."""
        return self.end_date - dt.timedelta(days=self.days - 1)


# --------------------------------------------------------------------------------------------
# Drawing the assumptions


def field_world_config(seed: int, size: str = "evaluation") -> FieldWorldConfig:
    """Draw the assumptions of the field world of ``seed``.

    ``size`` is ``evaluation`` (2-3 accounts, 160-240 ads, 15-25 incidents) or ``demo`` (one
    account of about 40 ads, 8-12 incidents); both cover 90 days ending on
    :data:`DEFAULT_END_DATE`, incidents only in the last 60.
    """
    if size not in _SIZE_RANGES:
        raise ConfigError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    ranges = _SIZE_RANGES[size]
    rng = _stream(seed, size, "assumptions")
    n_accounts = int(rng.integers(ranges.accounts[0], ranges.accounts[1] + 1))
    total_ads = int(rng.integers(ranges.ads[0], ranges.ads[1] + 1))
    split = rng.dirichlet(np.full(n_accounts, 4.0))
    ads_per_account = _split_integer(total_ads, split)
    # a site outage is rare: at most one account of a world has one
    outage = int(rng.integers(n_accounts)) if rng.random() < 0.65 else -1
    accounts = tuple(_draw_account(rng, n_ads, site_outage=index == outage)
                     for index, n_ads in enumerate(ads_per_account))
    level_mix = rng.dirichlet([3.0, 2.0, 1.5])
    return FieldWorldConfig(
        seed=seed, size=size, end_date=DEFAULT_END_DATE, days=DAYS, history_days=HISTORY_DAYS,
        n_incidents=int(rng.integers(ranges.incidents[0], ranges.incidents[1] + 1)),
        level_mix=(round(float(level_mix[0]), 3), round(float(level_mix[1]), 3),
                   round(float(level_mix[2]), 3)),
        kind_weights=tuple(round(float(x), 3)
                           for x in rng.dirichlet(np.full(len(FIELD_WORLD_KINDS), 1.5))),
        persist_share=_r(rng.uniform(0.05, 0.25)),
        accounts=accounts,
    )


def _draw_account(rng: np.random.Generator, n_ads: int, *,
                  site_outage: bool) -> AccountAssumptions:
    ad_scale = n_ads / 80.0
    return AccountAssumptions(
        n_ads=n_ads,
        currency="BRL" if rng.random() < 0.85 else "USD",
        daily_budget=_r(_log_uniform(rng, 15.0, 120.0) * n_ads, 2),
        cbo_share=_r(rng.uniform(0.15, 0.85)),
        campaign_budget_alpha=_r(_log_uniform(rng, 0.8, 4.0)),
        cpm_median=_r(_log_uniform(rng, 8.0, 60.0), 2),
        ctr_median=_r(_log_uniform(rng, 0.004, 0.03), 4),
        cvr_median=_r(_log_uniform(rng, 0.03, 0.25), 4),
        ad_quality_sd=_r(rng.uniform(0.15, 0.5)),
        winner_gain=_r(rng.uniform(0.3, 1.5)),
        share_drift_sd=_r(_log_uniform(rng, 0.03, 0.3)),
        cpm_ar_coef=_r(rng.uniform(0.3, 0.9)),
        cpm_noise_sd=_r(rng.uniform(0.04, 0.15)),
        cpm_noise_account_part=_r(rng.uniform(0.2, 0.8)),
        cpm_trend_per_day=_r(rng.uniform(-0.0025, 0.0035), 5),
        cvr_trend_per_day=_r(rng.uniform(-0.003, 0.002), 5),
        cpm_scale_elasticity=_r(rng.uniform(0.0, 0.25)),
        rate_noise_sd=_r(rng.uniform(0.02, 0.12)),
        click_dispersion=_r(_log_uniform(rng, 8.0, 400.0), 1),
        lead_dispersion=_r(_log_uniform(rng, 3.0, 80.0), 2),
        weekday_spend=_weekday_profile(rng, rng.uniform(0.0, 0.12)),
        weekday_cpm=_weekday_profile(rng, rng.uniform(0.0, 0.18)),
        weekday_cvr=_weekday_profile(rng, rng.uniform(0.0, 0.35)),
        pacing_mean=_r(rng.uniform(0.85, 1.0)),
        pacing_sd=_r(rng.uniform(0.02, 0.1)),
        frequency_base=_r(rng.uniform(1.03, 1.6)),
        frequency_growth=_r(rng.uniform(0.0, 0.5)),
        fatigue_rate=_r(rng.uniform(0.0, 0.015), 4),
        fatigue_onset_days=int(rng.integers(5, 31)),
        learning_days=int(rng.integers(3, 11)),
        learning_cpm_premium=_r(rng.uniform(0.1, 0.7)),
        learning_ctr_penalty=_r(rng.uniform(0.05, 0.4)),
        learning_cvr_penalty=_r(rng.uniform(0.1, 0.5)),
        budget_edits_per_month=_r(rng.uniform(0.2, 1.5)),
        scale_up_share=_r(rng.uniform(0.0, 0.25)),
        ad_launches_per_month=_r(rng.uniform(1.0, 8.0) * ad_scale),
        adset_launches_per_month=_r(rng.uniform(0.3, 2.5) * ad_scale),
        big_launch=bool(rng.random() < 0.6),
        stops_per_month=_r(rng.uniform(1.0, 6.0) * ad_scale),
        pauses_per_month=_r(rng.uniform(0.5, 5.0) * ad_scale),
        zero_row_share=_r(rng.uniform(0.15, 0.85)),
        delivery_reflow=_r(rng.uniform(0.0, 1.0)),
        demand_moves=int(rng.integers(0, 4)),
        auction_rises=int(rng.integers(1, 4)),
        site_outage=site_outage,
    )


def _weekday_profile(rng: np.random.Generator, amplitude: float) -> tuple[float, ...]:
    shape = rng.normal(0.0, 1.0, 7)
    shape -= shape.mean()
    shape /= max(np.abs(shape).max(), 1e-9)
    return tuple(round(float(x), 3) for x in np.exp(amplitude * shape))


# --------------------------------------------------------------------------------------------
# The world's entities


@dataclass
class _Campaign:
    id: str
    name: str
    account: int
    cbo: bool


@dataclass
class _AdSet:
    id: str
    name: str
    campaign: int
    start: int
    cpm_factor: float
    cvr_factor: float
    log_weight: float  # its pull on the campaign budget under CBO


@dataclass
class _Ad:
    id: str
    name: str
    account: int
    campaign: int
    adset: int
    start: int
    age0: int           # age in days on its first day of data
    cpm_factor: float
    ctr_factor: float
    cvr_factor: float
    frequency_base: float
    log_weight: float
    stop: int            # first day it no longer delivers (the number of days: never)
    pauses: list[tuple[int, int]] = field(default_factory=list)  # [start, end) of each pause


@dataclass
class _Holder:
    """What holds a budget: a CBO campaign or an ABO ad set."""

    entity_type: str
    index: int
    account: int
    campaign: int
    start: int
    budget: float  # its daily budget on its first day
    edits: list[tuple[int, float]] = field(default_factory=list)  # day, factor (launches)


@dataclass
class _Account:
    id: str
    name: str
    assumptions: AccountAssumptions


@dataclass
class _World:
    config: FieldWorldConfig
    dates: list[dt.date]
    accounts: list[_Account] = field(default_factory=list)
    campaigns: list[_Campaign] = field(default_factory=list)
    adsets: list[_AdSet] = field(default_factory=list)
    ads: list[_Ad] = field(default_factory=list)
    holders: list[_Holder] = field(default_factory=list)
    events: list[dict[str, object]] = field(default_factory=list)
    labels: list[dict[str, object]] = field(default_factory=list)
    used_ids: set[str] = field(default_factory=set)
    ad_holder: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    def holder_of_campaign(self, campaign: int) -> list[int]:
        return [h for h, holder in enumerate(self.holders) if holder.campaign == campaign]

    def event(self, day: int, account: int, entity_type: str, entity_id: str, kind: str,
              factor: float | None, description: str) -> None:
        self.events.append({
            "date": self.dates[day].isoformat(), "account_id": self.accounts[account].id,
            "entity_type": entity_type, "entity_id": entity_id, "kind": kind,
            "factor": np.nan if factor is None else round(float(factor), 3),
            "description": description,
        })


# --------------------------------------------------------------------------------------------
# Generation


def generate_field_world(config: FieldWorldConfig) -> SyntheticDataset:
    """Generate the field world of ``config``: daily insights per ad, labels and events."""
    if config.size not in SIZES:
        raise ConfigError(f"size must be one of {', '.join(SIZES)}, got {config.size!r}")
    dates = [config.start_date + dt.timedelta(days=d) for d in range(config.days)]
    world = _World(config=config, dates=dates)

    def stream(name: str) -> np.random.Generator:
        return _stream(config.seed, config.size, name)

    structure_rng = stream("structure")
    for index, assumptions in enumerate(config.accounts):
        _build_account(world, index, assumptions, structure_rng)
    world.ad_holder = _holders_of_ads(world)
    active, row_state = _build_timelines(world, stream("timelines"))
    budget = _build_budgets(world, stream("budgets"))
    shocks = _build_shocks(world, stream("shocks"))
    effects = _Effects.empty(len(world.ads), len(world.holders), config.days)
    _place_incidents(world, active, shocks, effects, stream("incidents"))
    numbers = _simulate(world, active, budget, shocks, effects, stream("noise"))
    return SyntheticDataset(
        config=config,  # type: ignore[arg-type]  # the dataclass is shared with the lab world
        insights=_insights_frame(world, numbers, row_state),
        labels=_labels_frame(world.labels),
        events=_events_frame(world.events),
    )


def summarize_field_world(dataset: SyntheticDataset) -> dict[str, object]:
    """Counts that describe a field world: rows, entities, days, labels by kind and level."""
    insights, labels = dataset.insights, dataset.labels
    return {
        "rows": len(insights),
        "accounts": int(insights["account_id"].nunique()),
        "campaigns": int(insights["campaign_id"].nunique()),
        "adsets": int(insights["adset_id"].nunique()),
        "ads": int(insights["ad_id"].nunique()),
        "days": int(insights["date"].nunique()),
        "start_date": str(insights["date"].min()),
        "end_date": str(insights["date"].max()),
        "incidents": len(labels),
        "campaign_wide": int(labels["campaign_wide"].sum()) if len(labels) else 0,
        "incidents_by_kind": {kind: int((labels["kind"] == kind).sum())
                              for kind in FIELD_WORLD_KINDS},
        "incidents_by_level": {level: int((labels["entity_type"] == level).sum())
                               for level in LEVELS},
        "events_by_kind": dict(sorted(Counter(dataset.events["kind"]).items())),
    }


# --------------------------------------------------------------------------------------------
# Structure: accounts, campaigns, ad sets, ads, launches


_BUSINESSES = (
    "Clínica Sorriso Pleno", "Imobiliária Horizonte Azul", "Auto Escola Ponto Certo",
    "Escola de Inglês Falar Bem", "Consórcio Rota Sul", "Energia Solar Sol Nascente",
    "Academia Movimento Vivo", "Seguros Bem Viver", "Cursinho Aprova Mais",
    "Estética Pele de Seda", "Planos de Saúde Vida Plena", "Construtora Vale Verde",
)
_CITIES = ("SP Capital", "Campinas", "Rio de Janeiro", "BH", "Curitiba", "Porto Alegre",
           "Recife", "Salvador", "Goiânia", "Florianópolis", "Brasil")
_OFFERS = ("Avaliação Gratuita", "Orçamento", "Aula Experimental", "Simulação", "Cadastro",
           "Lista VIP", "Consulta", "Visita ao Decorado", "Matrícula", "Diagnóstico")
_AUDIENCES = ("Interesses Mulheres 25-44", "Interesses Homens 30-55", "Lookalike 1% Leads 180d",
              "Lookalike 3% Compradores", "Aberto 25-55", "Remarketing Engajamento IG 30d",
              "Remarketing Site 14d", "Advantage+ Público", "Raio 10km", "Pais e Mães 28-50")
_FORMATS = ("Vídeo", "Reels", "Carrossel", "Estático", "Depoimento", "Story")
_ANGLES = ("Oferta", "Prova Social", "Dor", "Antes e Depois", "FAQ", "Urgência", "Benefícios",
           "Bastidores", "Comparativo")
_MONTHS = ("Jan", "Fev", "Mar", "Abr", "Mai", "Jun", "Jul", "Ago", "Set", "Out", "Nov", "Dez")


def _build_account(world: _World, index: int, assumptions: AccountAssumptions,
                   rng: np.random.Generator) -> None:
    account_id = _new_id(world, rng, digits=16, prefix="")
    taken = {a.name for a in world.accounts}
    name = str(rng.choice([b for b in _BUSINESSES if b not in taken]))
    world.accounts.append(_Account(account_id, name, assumptions))

    months = world.config.days / 30.0
    ad_launches = int(rng.poisson(assumptions.ad_launches_per_month * months))
    adset_launch_sizes = [int(rng.integers(1, 5)) for _ in
                          range(int(rng.poisson(assumptions.adset_launches_per_month * months)))]
    big_size = int(rng.integers(1, 4)) if assumptions.big_launch else 0
    while ad_launches + sum(adset_launch_sizes) + big_size > 0.45 * assumptions.n_ads:
        if adset_launch_sizes:
            adset_launch_sizes.pop()
        else:
            ad_launches -= 1
    n_initial = assumptions.n_ads - ad_launches - sum(adset_launch_sizes) - big_size

    first_campaign = len(world.campaigns)
    remaining = n_initial
    while remaining > 0:
        campaign = _add_campaign(world, index, assumptions, rng)
        for _ in range(int(rng.integers(1, 5))):
            if remaining <= 0:
                break
            adset = _add_adset(world, campaign, assumptions, rng, day=0)
            n = min(remaining, int(rng.integers(1, 7)))
            for _ in range(n):
                _add_ad(world, adset, assumptions, rng, day=0)
            remaining -= n
    campaigns = list(range(first_campaign, len(world.campaigns)))
    _assign_starting_budgets(world, campaigns, assumptions, rng)

    last = world.config.days - 1
    for size in adset_launch_sizes:
        day = int(rng.integers(1, last))
        _launch_adset(world, int(rng.choice(campaigns)), size, day, assumptions, rng, factor=None)
    if big_size:
        day = int(rng.integers(5, last - 4))
        factor = float(rng.uniform(2.5, 3.5))
        _launch_adset(world, int(rng.choice(campaigns)), big_size, day, assumptions, rng,
                      factor=factor)
    adsets = [s for s, adset in enumerate(world.adsets) if adset.campaign in campaigns]
    for _ in range(ad_launches):
        day = int(rng.integers(1, last))
        candidates = [s for s in adsets if world.adsets[s].start < day]
        adset = int(rng.choice(candidates))
        ad = _add_ad(world, adset, assumptions, rng, day=day)
        world.event(day, index, "ad", world.ads[ad].id, "ad_start", None,
                    f"new ad in a running ad set, learning for about "
                    f"{assumptions.learning_days} days")


def _add_campaign(world: _World, account: int, assumptions: AccountAssumptions,
                  rng: np.random.Generator) -> int:
    cbo = bool(rng.random() < assumptions.cbo_share)
    first = world.dates[0]  # created up to 5 months before the data begins
    year, month = divmod(first.year * 12 + first.month - 1 - int(rng.integers(0, 6)), 12)
    name = (f"[{'CBO' if cbo else 'ABO'}] Leads | {rng.choice(_OFFERS)} | {rng.choice(_CITIES)}"
            f" | {_MONTHS[month]}{year % 100:02d} #{len(world.campaigns) + 1:02d}")
    world.campaigns.append(_Campaign(_new_id(world, rng), name, account, cbo))
    return len(world.campaigns) - 1


def _add_adset(world: _World, campaign: int, assumptions: AccountAssumptions,
               rng: np.random.Generator, day: int, log_weight: float | None = None) -> int:
    name = f"{rng.choice(_AUDIENCES)} - {rng.choice(_CITIES)} #{len(world.adsets) + 1:03d}"
    spread = assumptions.ad_quality_sd
    world.adsets.append(_AdSet(
        id=_new_id(world, rng), name=name, campaign=campaign, start=day,
        cpm_factor=float(np.exp(rng.normal(0.0, spread))),
        cvr_factor=float(np.exp(rng.normal(0.0, spread))),
        log_weight=float(rng.normal(0.0, 0.4)) if log_weight is None else log_weight,
    ))
    return len(world.adsets) - 1


def _add_ad(world: _World, adset: int, assumptions: AccountAssumptions,
            rng: np.random.Generator, day: int) -> int:
    spread = assumptions.ad_quality_sd
    cpm_f, ctr_f, cvr_f = np.exp(rng.normal(0.0, spread, 3))
    ctr_f *= float(np.exp(rng.normal(0.0, spread)))  # creatives differ most in CTR
    quality = np.log(ctr_f * cvr_f / cpm_f)
    campaign = world.adsets[adset].campaign
    name = (f"{rng.choice(_FORMATS)} {rng.choice(_ANGLES)} {len(world.ads) + 1:03d} - "
            f"v{int(rng.integers(1, 5))}")
    world.ads.append(_Ad(
        id=_new_id(world, rng), name=name, account=world.campaigns[campaign].account,
        campaign=campaign, adset=adset, start=day, stop=world.config.days,
        age0=int(rng.integers(0, 150)) if day == 0 else 0,
        cpm_factor=float(cpm_f), ctr_factor=float(ctr_f), cvr_factor=float(cvr_f),
        frequency_base=float(1.0 + (assumptions.frequency_base - 1.0)
                             * np.exp(rng.normal(0.0, 0.3))),
        log_weight=float(assumptions.winner_gain * quality + rng.normal(0.0, 0.5)),
    ))
    return len(world.ads) - 1


def _assign_starting_budgets(world: _World, campaigns: list[int],
                             assumptions: AccountAssumptions, rng: np.random.Generator) -> None:
    shares = rng.dirichlet(np.full(len(campaigns), assumptions.campaign_budget_alpha))
    shares = np.maximum(shares, 0.01)
    shares /= shares.sum()
    for campaign, share in zip(campaigns, shares, strict=True):
        budget = assumptions.daily_budget * float(share)
        account = world.campaigns[campaign].account
        if world.campaigns[campaign].cbo:
            world.holders.append(_Holder("campaign", campaign, account, campaign, 0, budget))
            continue
        adsets = [s for s, adset in enumerate(world.adsets) if adset.campaign == campaign]
        split = rng.dirichlet(np.full(len(adsets), 2.0))
        for adset, part in zip(adsets, split, strict=True):
            world.holders.append(
                _Holder("adset", adset, account, campaign, 0, budget * float(part)))


def _launch_adset(world: _World, campaign: int, n_ads: int, day: int,
                  assumptions: AccountAssumptions, rng: np.random.Generator,
                  factor: float | None) -> None:
    """A new ad set in a running campaign; ``factor``: a big launch taking the campaign's
    budget to that multiple."""
    account = world.campaigns[campaign].account
    cbo = world.campaigns[campaign].cbo
    adset = _add_adset(world, campaign, assumptions, rng, day=day,
                       log_weight=1.2 if factor else None)
    ads = [_add_ad(world, adset, assumptions, rng, day=day) for _ in range(n_ads)]
    holders = world.holder_of_campaign(campaign)
    if cbo:
        holder = world.holders[holders[0]]
        if factor:
            world.event(day, account, "campaign", world.campaigns[campaign].id, "budget_change",
                        factor, f"campaign budget x{factor:.2f} for a new ad set")
            holder.edits.append((day, factor))
    else:
        running = sum(world.holders[h].budget for h in holders)
        if factor:
            budget = (factor - 1.0) * running
        else:
            budget = running / max(len(holders), 1) * float(rng.uniform(0.5, 1.5))
        world.holders.append(_Holder("adset", adset, account, campaign, day, budget))
    description = (f"new ad set with {n_ads} ad(s), learning for about "
                   f"{assumptions.learning_days} days")
    if factor:
        description = f"big launch: campaign spend to about x{factor:.2f}; " + description
    world.event(day, account, "adset", world.adsets[adset].id, "ad_start", factor, description)
    for ad in ads:
        world.event(day, account, "ad", world.ads[ad].id, "ad_start", None,
                    f"new ad in a new ad set ({world.adsets[adset].name})")


# --------------------------------------------------------------------------------------------
# Timelines: stops, pauses, missing rows and zero rows

_MISSING, _DATA, _ZERO = 0, 1, 2


def _build_timelines(world: _World, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n_days = world.config.days
    months = n_days / 30.0
    zero_fill: list[tuple[int, int, int]] = []  # ad, first day, end day of zero rows
    for index, account in enumerate(world.accounts):
        assumptions = account.assumptions
        ads = [a for a, ad in enumerate(world.ads) if ad.account == index]
        for _ in range(int(rng.poisson(assumptions.stops_per_month * months))):
            ad = int(rng.choice(ads))
            spec = world.ads[ad]
            if spec.stop < n_days or spec.start > n_days - 10:
                continue
            day = int(rng.integers(spec.start + 7, n_days))
            siblings = [world.ads[s] for s in ads if s != ad and world.ads[s].adset == spec.adset
                        and world.ads[s].start <= day < world.ads[s].stop]
            if not siblings:
                continue
            spec.stop = day
            world.event(day, index, "ad", spec.id, "ad_stop", None,
                        "ad switched off by the advertiser")
            if rng.random() < assumptions.zero_row_share:
                zero_fill.append((ad, day, min(n_days, day + int(rng.integers(3, 31)))))
        for _ in range(int(rng.poisson(assumptions.pauses_per_month * months))):
            ad = int(rng.choice(ads))
            spec = world.ads[ad]
            if spec.stop - spec.start < 8:
                continue
            first = int(rng.integers(spec.start + 3, spec.stop - 1))
            end = min(spec.stop, first + int(rng.integers(1, 15)))
            if any(first < e + 2 and s < end + 2 for s, e in spec.pauses):
                continue
            spec.pauses.append((first, end))
            world.event(first, index, "ad", spec.id, "ad_pause", None,
                        f"ad paused for {end - first} day(s)")
            if end < spec.stop:
                world.event(end, index, "ad", spec.id, "ad_start", None,
                            f"ad resumed after a pause of {end - first} day(s)")
            if rng.random() < assumptions.zero_row_share:
                zero_fill.append((ad, first, end))

    active = np.zeros((len(world.ads), n_days), dtype=bool)
    for a, spec in enumerate(world.ads):
        active[a, spec.start:spec.stop] = True
        for first, end in spec.pauses:
            active[a, first:end] = False
    row_state = np.where(active, _DATA, _MISSING).astype(np.int8)
    for ad, first, end in zero_fill:
        span = row_state[ad, first:end]
        span[span == _MISSING] = _ZERO
    return active, row_state


# --------------------------------------------------------------------------------------------
# Budgets and their edits


def _build_budgets(world: _World, rng: np.random.Generator) -> np.ndarray:
    """Daily budget of every holder (0 before it starts); edits persist from their day on."""
    n_days = world.config.days
    months = n_days / 30.0
    budget = np.zeros((len(world.holders), n_days))
    for h, holder in enumerate(world.holders):
        assumptions = world.accounts[holder.account].assumptions
        level = np.full(n_days, holder.budget)
        edits = list(holder.edits)
        n_edits = int(rng.poisson(assumptions.budget_edits_per_month
                                  * (n_days - holder.start) / n_days * months))
        entity_id = (world.campaigns[holder.index].id if holder.entity_type == "campaign"
                     else world.adsets[holder.index].id)
        if holder.start + 1 >= n_days:
            n_edits = 0
        days = (np.sort(rng.integers(holder.start + 1, n_days, n_edits)) if n_edits
                else np.array([], dtype=np.int64))
        scale = 1.0
        for day in days:
            day = int(day)
            if rng.random() < assumptions.scale_up_share and scale < 2.0:
                factor = _log_uniform(rng, 2.0, 4.0)
                what = "deliberate scale-up"
            else:
                # advertisers cut what they raised and raise what they cut
                up = rng.random() < (0.2 if scale > 2.0 else 0.8 if scale < 0.5 else 0.5)
                factor = float(np.exp((1.0 if up else -1.0)
                                      * rng.uniform(np.log(1.15), np.log(2.0))))
                what = "budget edit"
            scale *= factor
            edits.append((day, factor))
            world.event(day, holder.account, holder.entity_type, entity_id, "budget_change",
                        factor, f"{what}: daily budget x{factor:.2f}")
        for day, factor in sorted(edits):
            on_the_day = factor ** float(rng.uniform(0.3, 1.0))  # edited during the day
            level[day] *= on_the_day
            level[day + 1:] *= factor
        level[:holder.start] = 0.0
        budget[h] = level
    return budget


# --------------------------------------------------------------------------------------------
# Account shocks (undeclared days)


@dataclass
class _Shocks:
    spend: np.ndarray  # (accounts, days) multipliers
    cpm: np.ndarray
    ctr: np.ndarray
    cvr: np.ndarray
    leads: np.ndarray
    outages: list[tuple[int, int, float]]  # account, day, share of leads kept


def _build_shocks(world: _World, rng: np.random.Generator) -> _Shocks:
    n_accounts, n_days = len(world.accounts), world.config.days
    ones = np.ones((n_accounts, n_days))
    shocks = _Shocks(ones.copy(), ones.copy(), ones.copy(), ones.copy(), ones.copy(), [])
    for index, account in enumerate(world.accounts):
        assumptions = account.assumptions
        taken = np.zeros(n_days, dtype=bool)
        plan = ["auction"] * assumptions.auction_rises + ["demand"] * assumptions.demand_moves
        rng.shuffle(plan)
        if assumptions.site_outage:
            plan.append("outage")
        for kind in plan:
            lo = world.config.history_days if kind == "outage" else 1
            length = 1 if kind == "outage" else int(rng.integers(1, 4))
            for _ in range(50):
                first = int(rng.integers(lo, n_days - length + 1))
                if not taken[max(0, first - 2):first + length + 2].any():
                    break
            else:
                continue
            taken[first:first + length] = True
            if kind == "outage":
                kept = float(rng.uniform(0.0, 0.05))
                shocks.leads[index, first] *= kept
                shocks.outages.append((index, first, kept))
                continue
            moves = (_auction_rise(rng, length) if kind == "auction"
                     else _demand_move(rng, length))
            if not world.config.unlabelled_shocks:
                continue  # drawn all the same, so that nothing else changes
            for day, (move, description) in enumerate(moves, start=first):
                for metric, factor in move.items():
                    getattr(shocks, metric)[index, day] *= factor
                world.event(day, index, "account", account.id, "account_shock", move["cpm"],
                            description)
    return shocks


def _auction_rise(rng: np.random.Generator, length: int) -> list[tuple[dict[str, float], str]]:
    """Spend and CPM up together, by +20 % to +60 %, on every campaign of the account."""
    rise = float(rng.uniform(1.2, 1.6))
    moves = []
    for _ in range(length):
        x = float(np.clip(rise * np.exp(rng.normal(0.0, 0.04)), 1.15, 1.65))
        moves.append(({"spend": x, "cpm": x},
                      f"auction-wide CPM rise: spend and CPM x{x:.2f} on every campaign"))
    return moves


def _demand_move(rng: np.random.Generator, length: int) -> list[tuple[dict[str, float], str]]:
    """A holiday-like day: CPM up or down, conversion rate, CTR and spend moved, all campaigns."""
    up = rng.random() < 0.5
    move = {"cpm": float(rng.uniform(1.15, 1.5) if up else rng.uniform(0.7, 0.87)),
            "cvr": float(rng.uniform(0.6, 1.45)), "ctr": float(rng.uniform(0.85, 1.2)),
            "spend": float(rng.uniform(0.85, 1.3))}
    description = (f"demand move: CPM x{move['cpm']:.2f}, conversion rate x{move['cvr']:.2f}, "
                   f"CTR x{move['ctr']:.2f}, spend x{move['spend']:.2f} on every campaign")
    return [(move, description)] * length


# --------------------------------------------------------------------------------------------
# Incidents


@dataclass
class _Effects:
    """Per ad and day multipliers that the incidents inject."""

    cpm: np.ndarray
    ctr: np.ndarray
    cvr: np.ndarray
    leads: np.ndarray
    frequency: np.ndarray
    holder_spend: np.ndarray  # (holders, days)
    drops: list[tuple[np.ndarray, int, float]]  # ads, day, factor: spend drops within a holder

    @classmethod
    def empty(cls, n_ads: int, n_holders: int, n_days: int) -> _Effects:
        ones = np.ones((n_ads, n_days))
        return cls(ones.copy(), ones.copy(), ones.copy(), ones.copy(), ones.copy(),
                   np.ones((n_holders, n_days)), [])


@dataclass(frozen=True)
class _Target:
    level: str
    account: int
    campaign: int
    adset: int | None
    ad: int | None

    def related(self, other: _Target) -> bool:
        """Same entity, or one is an ancestor of the other."""
        if self.campaign != other.campaign:
            return False
        if self.adset is None or other.adset is None or self.adset != other.adset:
            return self.adset is None or other.adset is None
        return self.ad is None or other.ad is None or self.ad == other.ad


def _place_incidents(world: _World, active: np.ndarray, shocks: _Shocks, effects: _Effects,
                     rng: np.random.Generator) -> None:
    config = world.config
    placed: list[tuple[_Target, int, int]] = []  # target, first day, last day

    for account, day, kept in shocks.outages:
        for c, campaign in enumerate(world.campaigns):
            target = _Target("campaign", account, c, None, None)
            if campaign.account != account or not active[_target_ads(world, target), day].any():
                continue
            placed.append((target, day, day))
            _label(world, active, target, "tracking_broken", day, day, kept,
                   f"site outage: every conversion of the account lost for the day "
                   f"(leads x{kept:.3f})")

    remaining = max(config.n_incidents - len(world.labels), len(FIELD_WORLD_KINDS))
    kinds = list(rng.permutation(FIELD_WORLD_KINDS))
    weights = np.asarray(config.kind_weights) / sum(config.kind_weights)
    while len(kinds) < remaining:
        kinds.append(str(rng.choice(FIELD_WORLD_KINDS, p=weights)))
    for kind in kinds:
        for _ in range(300):
            target = _pick_target(world, str(kind), rng)
            low, high = KIND_DAYS[kind]
            length = int(rng.integers(low, high + 1))
            if rng.random() < config.persist_share:
                first = config.days - length
            else:
                first = int(rng.integers(config.history_days, config.days - length + 1))
            last = first + length - 1
            ads = _target_ads(world, target)
            if not active[np.ix_(ads, range(first, last + 1))].any(axis=0).all():
                continue
            if any(target.related(other) and first <= b + INCIDENT_GAP_DAYS
                   and a <= last + INCIDENT_GAP_DAYS for other, a, b in placed):
                continue
            placed.append((target, first, last))
            _inject(world, active, effects, target, str(kind), first, last, rng)
            break


def _pick_target(world: _World, kind: str, rng: np.random.Generator) -> _Target:
    if kind == "spend_spike":  # a budget typo: on what holds the budget
        holder = world.holders[int(rng.integers(len(world.holders)))]
        if holder.entity_type == "campaign":
            return _Target("campaign", holder.account, holder.campaign, None, None)
        return _Target("adset", holder.account, holder.campaign, holder.index, None)
    level = str(rng.choice(LEVELS, p=np.asarray(world.config.level_mix)
                           / sum(world.config.level_mix)))
    if level == "campaign":
        c = int(rng.integers(len(world.campaigns)))
        return _Target(level, world.campaigns[c].account, c, None, None)
    if level == "adset":
        s = int(rng.integers(len(world.adsets)))
        c = world.adsets[s].campaign
        return _Target(level, world.campaigns[c].account, c, s, None)
    a = int(rng.integers(len(world.ads)))
    ad = world.ads[a]
    return _Target(level, ad.account, ad.campaign, ad.adset, a)


def _target_ads(world: _World, target: _Target) -> list[int]:
    if target.ad is not None:
        return [target.ad]
    if target.adset is not None:
        return [a for a, ad in enumerate(world.ads) if ad.adset == target.adset]
    return [a for a, ad in enumerate(world.ads) if ad.campaign == target.campaign]


def _inject(world: _World, active: np.ndarray, effects: _Effects, target: _Target, kind: str,
            first: int, last: int, rng: np.random.Generator) -> None:
    ads = np.asarray(_target_ads(world, target))
    window = slice(first, last + 1)
    rows = np.ix_(ads, np.arange(first, last + 1))
    low, high = KIND_MAGNITUDE[kind]
    magnitude = float(rng.uniform(low, high))
    if kind == "tracking_broken":
        magnitude = 0.0 if rng.random() < 0.5 else magnitude
        effects.leads[rows] *= magnitude
        what = f"conversions stop being recorded (leads x{magnitude:.3f}) while delivery goes on"
    elif kind == "spend_spike":
        holders = [h for h, holder in enumerate(world.holders)
                   if holder.entity_type == target.level
                   and holder.index == (target.campaign if target.level == "campaign"
                                        else target.adset)]
        effects.holder_spend[holders, window] *= magnitude
        what = f"budget typo: spend x{magnitude:.2f}"
    elif kind == "cpm_spike":
        effects.cpm[rows] *= magnitude
        what = f"CPM x{magnitude:.2f} at the same spend"
    elif kind == "ctr_collapse":
        effects.ctr[rows] *= magnitude
        what = f"CTR x{magnitude:.2f} (broken creative or link)"
    elif kind == "delivery_drop":
        _inject_delivery_drop(world, effects, ads, first, last, magnitude, rng)
        cause = str(rng.choice(["ad rejected", "payment failed", "audience exhausted"]))
        what = f"{cause}: spend and impressions x{magnitude:.2f} of normal"
    elif kind == "conversion_rate_drop":
        effects.cvr[rows] *= magnitude
        what = f"conversion rate x{magnitude:.2f} (landing page or form problem)"
    elif kind == "frequency_spike":
        effects.frequency[rows] *= magnitude
        what = f"frequency x{magnitude:.2f}: the same people see the ads again and again"
    else:  # joint_drift
        cpc = float(rng.uniform(1.2, 1.3))
        cvr = float(rng.uniform(0.7, 0.8))
        effects.ctr[rows] *= magnitude
        effects.cpm[rows] *= cpc * magnitude  # CPC = CPM / CTR
        effects.cvr[rows] *= cvr
        what = (f"joint drift: CTR x{magnitude:.2f}, CPC x{cpc:.2f}, conversion rate "
                f"x{cvr:.2f}, each below its own threshold")
    _label(world, active, target, kind, first, last, magnitude, what)


def _inject_delivery_drop(world: _World, effects: _Effects, ads: np.ndarray, first: int,
                          last: int, magnitude: float, rng: np.random.Generator) -> None:
    """Whole holders lose their delivery; part of a holder loses it to its siblings."""
    hit = set(ads.tolist())
    holders = sorted({int(world.ad_holder[a]) for a in hit})
    for day in range(first, last + 1):
        factor = float(np.clip(magnitude * rng.uniform(0.7, 1.3), 0.02, 0.3))
        for h in holders:
            members = np.flatnonzero(world.ad_holder == h).tolist()
            if set(members) <= hit:
                effects.holder_spend[h, day] *= factor
            else:
                effects.drops.append((np.asarray(sorted(hit & set(members))), day, factor))


def _holders_of_ads(world: _World) -> np.ndarray:
    """The budget holder of every ad: its campaign under CBO, its ad set under ABO."""
    index = {(holder.entity_type, holder.index): h for h, holder in enumerate(world.holders)}
    return np.array([index[("campaign", ad.campaign) if world.campaigns[ad.campaign].cbo
                           else ("adset", ad.adset)] for ad in world.ads], dtype=int)


def _label(world: _World, active: np.ndarray, target: _Target, kind: str, first: int,
           last: int, magnitude: float, description: str) -> None:
    ads = _target_ads(world, target)
    n_ads = int(active[np.ix_(ads, range(first, last + 1))].any(axis=1).sum())
    campaign = world.campaigns[target.campaign]
    adset_id = world.adsets[target.adset].id if target.adset is not None else ""
    ad_id = world.ads[target.ad].id if target.ad is not None else ""
    entity_id = {"campaign": campaign.id, "adset": adset_id, "ad": ad_id}[target.level]
    world.labels.append({
        "incident_id": "", "account_id": world.accounts[target.account].id,
        "entity_type": target.level, "entity_id": entity_id, "campaign_id": campaign.id,
        "adset_id": adset_id, "ad_id": ad_id, "kind": kind,
        "start_date": world.dates[first].isoformat(), "end_date": world.dates[last].isoformat(),
        "days": last - first + 1, "persists_to_end": last == world.config.days - 1,
        "campaign_wide": target.level == "campaign", "metrics": KIND_METRICS[kind],
        "magnitude": round(magnitude, 3), "n_ads": n_ads, "description": description,
    })


# --------------------------------------------------------------------------------------------
# The daily numbers


@dataclass
class _Numbers:
    spend: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray
    leads: np.ndarray
    reach: np.ndarray


@dataclass(frozen=True)
class _AdIndex:
    """What every step of :func:`_simulate` looks up: each ad's account, ad set and budget
    holder, the calendar, and each ad's age and learning phase on each day."""

    world: _World
    days: np.ndarray  # (n_days,) day numbers
    weekday: np.ndarray  # (n_days,)
    ad_account: np.ndarray  # (n_ads,)
    ad_adset: np.ndarray
    ad_holder: np.ndarray
    holder_account: np.ndarray  # (n_holders,)
    adset_account: np.ndarray  # (n_adsets,)
    cbo: np.ndarray  # (n_ads,): the ad's campaign shares its budget across ad sets
    age: np.ndarray  # (n_ads, n_days) days since the ad first delivered, 0 before
    learning_days: np.ndarray  # (n_ads, 1)
    learning: np.ndarray  # (n_ads, n_days) 1 on the first day, 0 once learning is over

    @classmethod
    def of(cls, world: _World, n_days: int) -> _AdIndex:
        days = np.arange(n_days)
        ad_account = np.array([ad.account for ad in world.ads])
        age = np.array([ad.age0 for ad in world.ads])[:, None] + days[None, :] \
            - np.array([ad.start for ad in world.ads])[:, None]
        age = np.maximum(age, 0)
        learning_days = np.array([a.assumptions.learning_days for a in world.accounts],
                                 dtype=float)[ad_account][:, None]
        return cls(
            world=world, days=days, weekday=np.array([d.weekday() for d in world.dates]),
            ad_account=ad_account, ad_adset=np.array([ad.adset for ad in world.ads]),
            ad_holder=world.ad_holder,
            holder_account=np.array([h.account for h in world.holders]),
            adset_account=np.array([world.campaigns[s.campaign].account for s in world.adsets]),
            cbo=np.array([world.campaigns[ad.campaign].cbo for ad in world.ads]),
            age=age, learning_days=learning_days,
            learning=np.clip(1.0 - age / learning_days, 0.0, 1.0))

    def per_account(self, name: str) -> np.ndarray:
        """Each account's assumption ``name``."""
        return np.array([getattr(a.assumptions, name) for a in self.world.accounts], dtype=float)

    def per_ad(self, values: np.ndarray) -> np.ndarray:
        """A per-account array as a column of each ad's value."""
        return values[self.ad_account][:, None]

    def per_ad_assumption(self, name: str) -> np.ndarray:
        return self.per_ad(self.per_account(name))


def _simulate(world: _World, active: np.ndarray, budget: np.ndarray, shocks: _Shocks,
              effects: _Effects, rng: np.random.Generator) -> _Numbers:
    """Each ad's day, metric by metric (the random draws in this order, so that a seed gives the
    same world): spend, then impressions, clicks, leads and reach."""
    ix = _AdIndex.of(world, active.shape[1])
    spend = _ad_spend(ix, active, budget, shocks, effects, rng)
    impressions = _impressions(ix, spend, shocks, effects, rng)
    clicks = _clicks(ix, impressions, shocks, effects, rng)
    leads = _leads(ix, clicks, shocks, effects, rng)
    reach = _reach(ix, impressions, effects, rng)
    return _Numbers(spend, impressions.astype(np.int64), clicks.astype(np.int64),
                    leads.astype(np.int64), reach)


def _ad_spend(ix: _AdIndex, active: np.ndarray, budget: np.ndarray, shocks: _Shocks,
              effects: _Effects, rng: np.random.Generator) -> np.ndarray:
    """Holders' budgets, spent on shares of their active ads; a delivery drop's spend flows
    partly to the holder's other ads."""
    holder_spend = _holder_spend(ix, budget, shocks, effects, rng)
    spend = holder_spend[ix.ad_holder] * _delivery_shares(ix, active, rng)
    reflow = ix.per_account("delivery_reflow")
    for hit, day, factor in effects.drops:
        holder = ix.ad_holder[hit[0]]
        removed = spend[hit, day].sum() * (1.0 - factor)
        spend[hit, day] *= factor
        others = (ix.ad_holder == holder) & active[:, day]
        others[hit] = False
        total = spend[others, day].sum()
        if total > 0:
            spend[others, day] *= 1.0 + reflow[ix.holder_account[holder]] * removed / total
    return np.round(spend, 2)


def _holder_spend(ix: _AdIndex, budget: np.ndarray, shocks: _Shocks, effects: _Effects,
                  rng: np.random.Generator) -> np.ndarray:
    """What each budget holder spends each day: its budget paced (noisy, at most 125 %),
    ramped up over its first two days, by weekday, shocks and incidents."""
    world = ix.world
    n_holders, n_days = len(world.holders), len(ix.days)
    weekday_spend = np.array([a.assumptions.weekday_spend for a in world.accounts])[:, ix.weekday]
    pacing_sd = ix.per_account("pacing_sd")[ix.holder_account][:, None]
    pacing = ix.per_account("pacing_mean")[ix.holder_account][:, None] * np.exp(
        rng.normal(0.0, 1.0, (n_holders, n_days)) * pacing_sd)
    ramp = np.ones((n_holders, n_days))
    for h, holder in enumerate(world.holders):
        if holder.start > 0:
            ramp[h, holder.start:holder.start + 2] = (0.5, 0.8)[:n_days - holder.start]
    return (budget * np.minimum(pacing, 1.25) * ramp * weekday_spend[ix.holder_account]
            * shocks.spend[ix.holder_account] * effects.holder_spend)


def _delivery_shares(ix: _AdIndex, active: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each active ad's share of its holder's spend: drifting weights (and, under a campaign
    budget, its ad set's), small while the ad is learning."""
    world = ix.world
    n_ads, n_days = active.shape
    drift_sd = ix.per_account("share_drift_sd")
    ad_drift = _ar1(rng, 0.97, drift_sd[ix.ad_account], n_ads, n_days)
    adset_drift = _ar1(rng, 0.97, drift_sd[ix.adset_account], len(world.adsets), n_days)
    adset_weight = np.array([s.log_weight for s in world.adsets])
    log_weight = np.array([ad.log_weight for ad in world.ads])[:, None] + ad_drift
    log_weight = log_weight + np.where(ix.cbo[:, None], adset_weight[ix.ad_adset][:, None]
                                       + adset_drift[ix.ad_adset], 0.0)
    spend_ramp = np.clip((ix.age + 1) / ix.learning_days, 0.2, 1.0) ** 1.5
    weight = np.exp(log_weight - log_weight.max()) * spend_ramp * active
    weight_sum = np.zeros((len(world.holders), n_days))
    np.add.at(weight_sum, ix.ad_holder, weight)
    return np.divide(weight, weight_sum[ix.ad_holder], out=np.zeros_like(weight),
                     where=weight_sum[ix.ad_holder] > 0)


def _impressions(ix: _AdIndex, spend: np.ndarray, shocks: _Shocks, effects: _Effects,
                 rng: np.random.Generator) -> np.ndarray:
    """Spend bought at a CPM: AR(1) noise shared by the account and by each ad set,
    seasonality, trend, scale and learning."""
    world = ix.world
    n_days = len(ix.days)
    rho, noise_sd = ix.per_account("cpm_ar_coef"), ix.per_account("cpm_noise_sd")
    part = ix.per_account("cpm_noise_account_part")
    account_noise = _ar1(rng, rho, noise_sd * np.sqrt(part), len(world.accounts), n_days)
    adset_noise = _ar1(rng, rho[ix.adset_account],
                       (noise_sd * np.sqrt(1.0 - part))[ix.adset_account],
                       len(world.adsets), n_days)
    delivered = np.zeros((len(world.holders), n_days))
    np.add.at(delivered, ix.ad_holder, spend)
    starting = np.array([h.budget for h in world.holders])[:, None]
    pressure = np.clip(delivered / starting, 0.2, 8.0)
    weekday_cpm = np.array([a.assumptions.weekday_cpm for a in world.accounts])[:, ix.weekday]
    cpm = (ix.per_ad_assumption("cpm_median")
           * np.array([ad.cpm_factor * world.adsets[ad.adset].cpm_factor
                       for ad in world.ads])[:, None]
           * np.exp(account_noise[ix.ad_account] + adset_noise[ix.ad_adset])
           * weekday_cpm[ix.ad_account]
           * np.exp(ix.per_ad_assumption("cpm_trend_per_day") * ix.days[None, :])
           * pressure[ix.ad_holder] ** ix.per_ad_assumption("cpm_scale_elasticity")
           * (1.0 + ix.per_ad_assumption("learning_cpm_premium") * ix.learning)
           * shocks.cpm[ix.ad_account] * effects.cpm)
    impressions = rng.poisson(spend * 1000.0 / cpm)
    impressions[spend <= 0] = 0
    return impressions


def _clicks(ix: _AdIndex, impressions: np.ndarray, shocks: _Shocks, effects: _Effects,
            rng: np.random.Generator) -> np.ndarray:
    """Beta-binomial around a CTR with fatigue and a learning penalty."""
    fatigue = np.maximum(0.35, np.exp(-ix.per_ad_assumption("fatigue_rate")
                                      * np.maximum(0, ix.age - ix.per_ad_assumption(
                                          "fatigue_onset_days"))))
    ctr = (ix.per_ad_assumption("ctr_median")
           * np.array([ad.ctr_factor for ad in ix.world.ads])[:, None] * fatigue
           * (1.0 - ix.per_ad_assumption("learning_ctr_penalty") * ix.learning)
           * np.exp(rng.normal(0.0, 1.0, impressions.shape)
                    * ix.per_ad_assumption("rate_noise_sd"))
           * shocks.ctr[ix.ad_account] * effects.ctr)
    ctr = np.clip(ctr, 1e-4, 0.3)
    k = ix.per_ad_assumption("click_dispersion")  # the day's CTR varies by about 1 / sqrt(k)
    day_ctr = rng.beta(np.broadcast_to(k, ctr.shape), k * (1.0 - ctr) / ctr)
    return rng.binomial(impressions, day_ctr)


def _leads(ix: _AdIndex, clicks: np.ndarray, shocks: _Shocks, effects: _Effects,
           rng: np.random.Generator) -> np.ndarray:
    """Gamma-Poisson around clicks x conversion rate (never more leads than clicks)."""
    world = ix.world
    weekday_cvr = np.array([a.assumptions.weekday_cvr for a in world.accounts])[:, ix.weekday]
    cvr = (ix.per_ad_assumption("cvr_median")
           * np.array([ad.cvr_factor * world.adsets[ad.adset].cvr_factor
                       for ad in world.ads])[:, None]
           * weekday_cvr[ix.ad_account]
           * np.exp(ix.per_ad_assumption("cvr_trend_per_day") * ix.days[None, :])
           * (1.0 - ix.per_ad_assumption("learning_cvr_penalty") * ix.learning)
           * np.exp(rng.normal(0.0, 1.0, clicks.shape) * ix.per_ad_assumption("rate_noise_sd"))
           * shocks.cvr[ix.ad_account] * effects.cvr)
    cvr = np.clip(cvr, 0.0, 0.9)
    mean_leads = clicks * cvr * shocks.leads[ix.ad_account] * effects.leads
    shape = ix.per_ad_assumption("lead_dispersion")
    leads = rng.poisson(rng.gamma(np.broadcast_to(shape, mean_leads.shape), 1.0)
                        * mean_leads / shape)
    return np.minimum(leads, clicks)


def _reach(ix: _AdIndex, impressions: np.ndarray, effects: _Effects,
           rng: np.random.Generator) -> np.ndarray:
    """Impressions / frequency; frequency climbs as an ad's audience wears out."""
    base = np.array([ad.frequency_base for ad in ix.world.ads])[:, None]
    frequency = (1.0 + (base - 1.0) * (1.0 + ix.per_ad_assumption("frequency_growth")
                                       * np.minimum(ix.age, 90) / 30.0)) * effects.frequency
    reach = np.round(impressions / frequency
                     * np.exp(rng.normal(0.0, 0.03, impressions.shape)))
    return np.clip(reach, np.minimum(impressions, 1), impressions).astype(np.int64)


def _ar1(rng: np.random.Generator, rho: np.ndarray | float, sd: np.ndarray | float,
         n: int, n_days: int) -> np.ndarray:
    """``n`` AR(1) series with coefficient ``rho`` and stationary standard deviation ``sd``."""
    rho = np.broadcast_to(np.asarray(rho, dtype=float), (n,))
    sd = np.broadcast_to(np.asarray(sd, dtype=float), (n,))
    shocks = rng.normal(0.0, 1.0, (n, n_days))
    out = np.empty((n, n_days))
    out[:, 0] = shocks[:, 0] * sd
    innovation = sd * np.sqrt(1.0 - rho ** 2)
    for day in range(1, n_days):
        out[:, day] = rho * out[:, day - 1] + innovation * shocks[:, day]
    return out


# --------------------------------------------------------------------------------------------
# Frames


def _insights_frame(world: _World, numbers: _Numbers, row_state: np.ndarray) -> pd.DataFrame:
    ads, days = np.nonzero(row_state != _MISSING)
    data = row_state[ads, days] == _DATA
    ad_fields = [(world.accounts[ad.account], world.campaigns[ad.campaign],
                  world.adsets[ad.adset], ad) for ad in world.ads]
    frame = pd.DataFrame({
        "date": [world.dates[d].isoformat() for d in days],
        "account_id": [ad_fields[a][0].id for a in ads],
        "account_name": [ad_fields[a][0].name for a in ads],
        "currency": [ad_fields[a][0].assumptions.currency for a in ads],
        "campaign_id": [ad_fields[a][1].id for a in ads],
        "campaign_name": [ad_fields[a][1].name for a in ads],
        "adset_id": [ad_fields[a][2].id for a in ads],
        "adset_name": [ad_fields[a][2].name for a in ads],
        "ad_id": [ad_fields[a][3].id for a in ads],
        "ad_name": [ad_fields[a][3].name for a in ads],
        "spend": np.where(data, numbers.spend[ads, days], 0.0).round(2),
        "impressions": np.where(data, numbers.impressions[ads, days], 0),
        "clicks": np.where(data, numbers.clicks[ads, days], 0),
        "leads": np.where(data, numbers.leads[ads, days], 0),
        "reach": np.where(data, numbers.reach[ads, days], 0),
    })
    frame = frame.sort_values(["date", "account_id", "ad_id"], kind="stable")
    return frame.reset_index(drop=True)[list(INSIGHT_COLUMNS)]


def _labels_frame(labels: list[dict[str, object]]) -> pd.DataFrame:
    frame = pd.DataFrame(labels, columns=list(LABEL_COLUMNS))
    frame = frame.sort_values(["start_date", "account_id", "entity_id"], kind="stable")
    frame = frame.reset_index(drop=True)
    frame["incident_id"] = [f"fw_{i + 1:04d}" for i in range(len(frame))]
    return frame.astype({"days": "int64", "n_ads": "int64", "persists_to_end": bool,
                         "campaign_wide": bool, "magnitude": float})


def _events_frame(events: list[dict[str, object]]) -> pd.DataFrame:
    frame = pd.DataFrame(events, columns=list(EVENT_COLUMNS))
    frame = frame.sort_values(["date", "account_id", "kind", "entity_id"], kind="stable")
    return frame.reset_index(drop=True).astype({"factor": float})


# --------------------------------------------------------------------------------------------
# Small helpers

_STREAMS = ("assumptions", "structure", "timelines", "budgets", "shocks", "incidents", "noise")


def _stream(seed: int, size: str, name: str) -> np.random.Generator:
    """An independent random stream per part of the world, so parts do not shift each other."""
    return np.random.default_rng(
        np.random.SeedSequence([seed, 14, SIZES.index(size), _STREAMS.index(name)]))


def _new_id(world: _World, rng: np.random.Generator, digits: int = 18,
            prefix: str = "1202") -> str:
    while True:
        tail = digits - len(prefix)
        value = prefix + str(int(rng.integers(10 ** (tail - 1), 10 ** tail)))
        if value not in world.used_ids:
            world.used_ids.add(value)
            return value


def _split_integer(total: int, shares: np.ndarray) -> list[int]:
    counts = np.floor(shares * total).astype(int)
    counts[np.argmax(shares)] += total - counts.sum()
    return [int(c) for c in counts]


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _r(value: float, digits: int = 3) -> float:
    return round(float(value), digits)
