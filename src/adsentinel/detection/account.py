"""Detecting one account: run the detector over its new days and store what it finds, idempotently.

One call (:func:`detect_account`) per account and run:

1. Read the account, its entities and the daily rows of every entity over the history window,
   in three set-based queries.
2. Choose the days to judge: the analysis day and the ``recheck_days - 1`` before it (yesterday's
   numbers are often restated by attribution), plus any older day restated *after* an anomaly was
   stored for it.
3. Run :class:`~adsentinel.detect.anomaly_detector.AnomalyDetector` per entity and day (a partial
   day is judged against what is expected by its local hour; an ad is judged with its ad set as
   the budget holder, so that budget moving between sibling ads is not an incident); the forests'
   scores of the judged days are computed first, for every entity in one call). A chunk of a
   large account (``campaign_ids``) is judged with the whole account's common moves and
   budget steps (:func:`load_account_facts`), computed once for all its chunks.
4. Upsert one row per (entity, day, metric) with ``INSERT .. ON CONFLICT DO UPDATE`` (SQLite and
   PostgreSQL alike), so that re-running never duplicates and concurrent runs do not collide. A
   stored anomaly of a judged day that the detector no longer finds is ``retracted`` (only when
   still ``open``: an acknowledged one keeps the user's status); a retracted one found again is
   re-opened.
5. Group the hierarchy: for each day and metric, an ad set's or ad's anomaly whose campaign (or
   ad set) has the same anomaly is linked to it through ``incident_id``, so that the campaign
   carries the incident and its children are details of it, not fifty separate alerts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.config import Settings
from adsentinel.db.bulk import read_frame
from adsentinel.db.engine import session_scope
from adsentinel.db.models import (
    AdAccount,
    Anomaly,
    AnomalyStatus,
    DailyInsight,
    Entity,
    table_of,
    utcnow,
)
from adsentinel.detect.account_day import (
    BUDGET_HOLDERS,
    AccountTree,
    EntityModel,
    account_budget_steps,
    judge_account_day,
)
from adsentinel.detect.account_facts import AccountFacts, account_facts
from adsentinel.detect.account_walk import day_tests
from adsentinel.detect.anomaly_detector import AnomalyDetector, DetectedAnomaly
from adsentinel.detect.budget_habits import spend_calendars
from adsentinel.detect.daily_table import DailyTable, prepare_daily_frames
from adsentinel.detect.features import COUNT_COLUMNS
from adsentinel.detect.forest_day_scores import with_day_scores
from adsentinel.detection.feedback import with_feedback
from adsentinel.detection.impact import impact_columns
from adsentinel.errors import NotFoundError
from adsentinel.jsonable import json_ready
from adsentinel.scope import entities_under_campaigns
from adsentinel.sync.account_changes import comparable_since
from adsentinel.timezones import as_utc, zone_or_utc

log = logging.getLogger(__name__)

#: ``model_loader(entity_type, entity_id)`` -> ``(model, training_scores or None)`` or ``None``.
ModelLoader = Callable[[str, str], "tuple[Any, np.ndarray | None] | None"]

_LEVEL_ORDER = {"campaign": 0, "adset": 1, "ad": 2}


def detector_from_settings(settings: Settings) -> AnomalyDetector:
    """The detector configured by the detection settings (``ANOMALY_*``, ``ISOLATION_FOREST_*``,
    ``FREQUENCY_IDEAL``...)."""
    return AnomalyDetector(
        z_threshold=settings.anomaly_z_threshold,
        iqr_multiplier=settings.anomaly_iqr_multiplier,
        min_history_days=settings.anomaly_min_history_days,
        use_isolation_forest=settings.use_isolation_forest,
        frequency_ideal=settings.frequency_ideal,
        history_days=settings.isolation_forest_history_days,
    )


def detect_account(
    *,
    session_factory: sessionmaker[Session],
    settings: Settings,
    account_id: int,
    analysis_date: date | None = None,
    model_loader: ModelLoader | None = None,
    recheck_days: int = 2,
    now: datetime | None = None,
    campaign_ids: Sequence[int] | None = None,
    batch_forest_scores: bool = True,
    account_facts: AccountFacts | None = None,
    walk_tests: bool = True,
) -> list[Anomaly]:
    """Detect and store the anomalies of every entity of ``account_id``.

    Parameters
    ----------
    session_factory : sessionmaker
        Opens the unit of work (committed once at the end).
    settings : Settings
        Detector knobs (``anomaly_*``, ``frequency_ideal``, ``use_isolation_forest``).
    account_id : int
        The account (``AdAccount.id``); :class:`NotFoundError` when unknown.
    analysis_date : date, optional
        Last day to judge. Given, every entity's rows of the ``recheck_days`` up to it are
        judged. Default (the hourly run): the account's latest day with data, and only rows
        added or restated since the entity was last judged (``Entity.judged_at``), whatever
        their day: unchanged days keep their verdict and cost nothing.
    model_loader : callable, optional
        ``(entity_type, entity_id) -> (model, training_scores) | None`` giving an entity's
        multivariate model (``entity_id`` is ``str(Entity.id)``); ``None`` = statistical only.
    recheck_days : int
        How many days up to ``analysis_date`` are (re-)judged on every run.
    now : datetime, optional
        Time of the run (for ``updated_at``/``status_at``); default the current UTC time.
    campaign_ids : sequence of int, optional
        Judge only these campaigns and everything below them (one chunk of a large account);
        anomalies of other entities are left untouched.
    batch_forest_scores : bool
        Score the judged days of every entity's forest in one call before judging (the
        hourly cycle); ``False`` lets the detector score each entity's day on its own (the
        reference the batched scores are tested against: the same anomalies).
    account_facts : AccountFacts, optional
        With ``campaign_ids``: the whole account's common moves and budget steps
        (:func:`load_account_facts`, computed once for all the chunks), so that the chunk
        judges its entities as the whole account would. Absent, or not covering a judged day,
        they are read here.
    walk_tests : bool
        Compute the statistical tests of every judged entity-day (and of its budget holder) in
        one vectorised walk before judging (:func:`~adsentinel.detect.account_walk.day_tests`);
        ``False`` runs them entity by entity while judging (the per-day reference the walk is
        tested against: the same anomalies).

    Returns
    -------
    list of Anomaly
        The stored, non-retracted anomalies of the judged days and of the ``recheck_days``
        window (judged now or earlier), worst first.
    """
    if recheck_days < 1:
        raise ValueError(f"recheck_days must be >= 1, got {recheck_days!r}")
    now = now or utcnow()
    detector = detector_from_settings(settings)
    with session_scope(session_factory) as session:
        account = session.get(AdAccount, account_id)
        if account is None:
            raise NotFoundError(
                f"ad account {account_id} does not exist",
                hint="list accounts with `adsentinel accounts` or import data first",
            )
        scope = None
        if campaign_ids is not None:  # one chunk of a large account: read only its entities
            scope = entities_under_campaigns(session, account_id, campaign_ids)
        entities = _entities(session, account_id, scope)
        # read now: the bulk statements below expire the session's objects, and reading an
        # expired entity's parent would cost a query each
        parents = {entity_id: entity.parent_id for entity_id, entity in entities.items()}
        forced = analysis_date is not None
        if analysis_date is None:
            analysis_date = _latest_day(session, account_id)
            if analysis_date is None:
                return []
        first_day = analysis_date - timedelta(days=detector.history_days + recheck_days)
        insights = _load_insights(session, account_id, first_day, analysis_date, scope)
        if insights.empty:
            return []
        in_scope = {int(e) for e in insights["entity_id"].unique()}
        judged_at = {e: entities[e].judged_at for e in in_scope if e in entities}
        judged = _days_to_judge(session, account_id, insights, analysis_date, recheck_days,
                                judged_at=judged_at, everything_in_window=forced)
        if scope is not None and (account_facts is None
                                  or not account_facts.covers({d for _, d in judged})):
            log.info("account %s, chunk of %d campaigns: the account's facts %s; reading them",
                     account_id, len(campaign_ids or []),
                     "were not given" if account_facts is None else "do not cover its days")
            account_facts = load_account_facts(session, detector, account_id, analysis_date,
                                               {d for _, d in judged}, recheck_days)
        found = _run_detector(detector, entities, insights, judged, account, model_loader,
                              batch_forest_scores, None if scope is None else account_facts,
                              walk_tests=walk_tests)
        found = with_feedback(session, account_id, found)  # damping, calendar
        _upsert(session, account_id, found, now,
                impact_columns(session, account_id, found, judged))  # money, run start
        _retract_missing(session, account_id, judged, found, now)
        _mark_judged(session, {entity_id for entity_id, _ in judged}, now)  # others unchanged
        window = {(e, d) for e in in_scope for d in _window_days(analysis_date, recheck_days)}
        stored = _stored_for(session, account_id, judged | window)
        _link_hierarchy(stored, parents)
        session.flush()
        result = [a for a in stored if a.status != AnomalyStatus.retracted.value]
    log.info(
        "account %s: %d entity-days judged, %d anomalies stored",
        account_id, len(judged), len(result),
    )
    return sorted(result, key=lambda a: -a.score)


# --- reading ----------------------------------------------------------------------------------


def _entities(session: Session, account_id: int, scope: set[int] | None) -> dict[int, Entity]:
    """The account's entities by id, only those in ``scope`` when given: a chunk of a large
    account loads its own entities, not the account's every one for each of its chunks."""
    query = select(Entity).where(Entity.account_id == account_id)
    if scope is None:
        return {e.id: e for e in session.scalars(query)}
    ordered = sorted(scope)
    found: dict[int, Entity] = {}
    for start in range(0, len(ordered), 10_000):  # SQLite's bound-parameter limit
        found.update((e.id, e) for e in session.scalars(
            query.where(Entity.id.in_(ordered[start:start + 10_000]))))
    return found


def _latest_day(session: Session, account_id: int) -> date | None:
    return session.scalar(
        select(DailyInsight.day)
        .join(Entity, Entity.id == DailyInsight.entity_id)
        .where(Entity.account_id == account_id)
        .order_by(DailyInsight.day.desc())
        .limit(1)
    )


def _load_insights(session: Session, account_id: int, first: date, last: date,
                   entity_ids: set[int] | None = None) -> pd.DataFrame:
    """Every entity's (or the given entities') daily rows in ``[first, last]``, one query;
    never before the account's last currency or timezone change up to ``last``."""
    first = max(first, comparable_since(session, account_id, last) or first)
    # SQLite allows 32,766 bound parameters: a larger chunk is filtered after reading
    in_sql = entity_ids is not None and len(entity_ids) <= 30_000
    columns = [
        DailyInsight.entity_id, DailyInsight.day,
        *(getattr(DailyInsight, c) for c in COUNT_COLUMNS),
        DailyInsight.is_complete, DailyInsight.as_of, DailyInsight.updated_at,
    ]
    query = (
        select(*columns)
        .join(Entity, Entity.id == DailyInsight.entity_id)
        .where(Entity.account_id == account_id, DailyInsight.day.between(first, last),
               *([DailyInsight.entity_id.in_(sorted(entity_ids))]
                 if in_sql and entity_ids is not None else []))
        .order_by(DailyInsight.entity_id, DailyInsight.day)
    )
    names = ["entity_id", "date", *COUNT_COLUMNS, "is_complete", "as_of", "updated_at"]
    if session.connection().dialect.name == "postgresql":
        return _typed_insights(read_frame(session, query, names))  # COPY: bulk, no row objects
    rows = session.execute(query).all()
    if not rows:
        return pd.DataFrame(columns=names)
    # column by column with explicit types: several times faster than pandas' row-wise
    # conversion on the ~100 rows per entity read here
    values = list(zip(*rows, strict=True))
    frame = pd.DataFrame({
        "entity_id": np.asarray(values[0], dtype=np.int64),
        "date": pd.to_datetime(np.asarray(values[1], dtype="datetime64[D]")),
        **{c: np.asarray(v, dtype=float)
           for c, v in zip(COUNT_COLUMNS, values[2:2 + len(COUNT_COLUMNS)], strict=True)},
        "is_complete": np.asarray(values[-3], dtype=bool),
        "as_of": list(values[-2]),
        "updated_at": pd.to_datetime([as_utc(u) for u in values[-1]], utc=True),
    })
    if entity_ids is not None and not in_sql:
        frame = frame[frame["entity_id"].isin(entity_ids)]
    return frame


def _typed_insights(raw: pd.DataFrame) -> pd.DataFrame:
    """:func:`_load_insights`' frame from the text PostgreSQL's ``COPY`` wrote (``t``/``f``,
    ISO timestamps with their offset, empty for NULL), typed as the rows path types it."""
    if raw.empty:
        return pd.DataFrame(columns=raw.columns)
    return pd.DataFrame({
        "entity_id": raw["entity_id"].to_numpy(dtype=np.int64),
        "date": pd.to_datetime(raw["date"].to_numpy().astype("datetime64[D]")),
        **{c: raw[c].to_numpy(dtype=float) for c in COUNT_COLUMNS},
        "is_complete": raw["is_complete"].astype(str).eq("t").to_numpy(),
        "as_of": list(pd.to_datetime(raw["as_of"], utc=True, format="ISO8601")
                      .astype(object).where(raw["as_of"].notna(), None)),
        "updated_at": pd.to_datetime(raw["updated_at"], utc=True, format="ISO8601"),
    })


def _days_to_judge(
    session: Session,
    account_id: int,
    insights: pd.DataFrame,
    analysis_date: date,
    recheck: int,
    *,
    judged_at: dict[int, datetime | None],
    everything_in_window: bool,
) -> set[tuple[int, date]]:
    """(entity, day) pairs to judge.

    An entity never judged before: its rows in the recheck window, and older rows restated after
    their stored anomaly. An entity judged before: every row updated since (new days, today's
    growing partial numbers, restated days, whether or not they had an anomaly). With
    ``everything_in_window`` the whole recheck window is judged as well.
    """
    window_start = pd.Timestamp(analysis_date - timedelta(days=recheck - 1))
    entity_ids = insights["entity_id"].to_numpy().astype(np.int64)
    days = insights["date"].to_numpy().astype("datetime64[D]")
    updated = _utc_instants(insights["updated_at"])
    # each row's entity's last judgement (NaT: never), looked up per entity, not per row
    known = np.unique(entity_ids)
    marks = _utc_instants(pd.Series([judged_at.get(int(e)) for e in known], dtype=object))
    last = marks[np.searchsorted(known, entity_ids)]
    never = np.isnat(last)
    in_window = days >= np.datetime64(window_start.date(), "D")
    changed = ~never & (updated > last)
    pick = changed | (in_window & (never | everything_in_window))
    judged = set(zip(entity_ids[pick].tolist(), days[pick].tolist(), strict=True))
    if never.any():
        judged |= _restated_after_detection(session, account_id, insights[never], window_start)
    return judged


def _utc_instants(stamps: pd.Series) -> np.ndarray:
    """Timestamps (aware, or naive meaning UTC; ``None`` for none) as UTC ``datetime64[ns]``
    (NaT for none), comparable as plain numbers."""
    aware = pd.to_datetime(stamps, utc=True)
    return np.asarray(aware.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]"))


def _restated_after_detection(
    session: Session, account_id: int, insights: pd.DataFrame, window_start: pd.Timestamp
) -> set[tuple[int, date]]:
    """Older rows updated after the anomaly stored for them (entities without ``judged_at``)."""
    stored = session.execute(
        select(Anomaly.entity_id, Anomaly.day, Anomaly.updated_at).where(
            Anomaly.account_id == account_id, Anomaly.day < window_start.date()
        )
    ).all()
    if not stored:
        return set()
    last_detected: dict[tuple[int, date], datetime] = {}
    for entity_id, day, updated in stored:
        key = (entity_id, day)
        last_detected[key] = max(as_utc(updated), last_detected.get(key, as_utc(updated)))
    restated = set()
    for entity_id, day, updated in zip(
        insights["entity_id"], insights["date"], insights["updated_at"], strict=True
    ):
        key = (int(entity_id), day.date())
        if key in last_detected and as_utc(updated) > last_detected[key]:
            restated.add(key)
    return restated


def _window_days(analysis_date: date, recheck: int) -> list[date]:
    return [analysis_date - timedelta(days=back) for back in range(recheck)]


def _mark_judged(session: Session, entity_ids: set[int], now: datetime) -> None:
    """Record that these entities' rows up to ``now`` have been judged (entities with no new
    or restated row keep their mark: nothing of theirs changed since)."""
    ordered = sorted(entity_ids)
    for start in range(0, len(ordered), 10_000):  # SQLite's bound-parameter limit
        session.execute(
            update(Entity).where(Entity.id.in_(ordered[start:start + 10_000]))
            .values(judged_at=now).execution_options(synchronize_session=False)
        )




# --- detecting --------------------------------------------------------------------------------


def _run_detector(
    detector: AnomalyDetector,
    entities: dict[int, Entity],
    insights: pd.DataFrame,
    judged: set[tuple[int, date]],
    account: AdAccount,
    model_loader: ModelLoader | None,
    batch_forest_scores: bool = True,
    whole_account: AccountFacts | None = None,
    *,
    walk_tests: bool = True,
) -> list[DetectedAnomaly]:
    """The judged entity-days through :func:`~adsentinel.detect.account_day.judge_account_day`,
    one day at a time, so that each entity is judged against its account and its ads; the
    forests' scores of the judged days first, all in one call (:func:`with_day_scores`).
    ``whole_account``: the account's facts when the entities are one chunk of it; otherwise
    they are computed here from the entities' own campaigns (the same function: one way to
    decide, whole or chunked)."""
    zone = zone_or_utc(account.timezone)
    # Prepared (one row per calendar day) for all entities in one pass, shared by every day:
    # laid end to end for the walk, and each entity's own frame for its judgement.
    table = DailyTable.of_rows(insights)
    prepared = table.lazy_frames(entities)  # a frame is made only for what reads it
    present = [cast(int, e) for e in prepared]  # in the table's order (entity ids)
    hours_of = _partial_hours(insights, zone)
    tree = AccountTree(
        frames=prepared,
        levels={e: entities[e].level for e in present},
        parents={e: (entities[e].parent_id if entities[e].parent_id in prepared else None)
                 for e in present},
        entity_ids={e: str(e) for e in present},
    )
    days: dict[date, list[int]] = {}
    for entity_id, day in judged:
        if entity_id in prepared:
            days.setdefault(day, []).append(entity_id)
    if whole_account is None:  # the whole account is here: its facts from its own campaigns
        whole_account = account_facts(detector, tree.campaign_frames, tree.budget_steps, days,
                                      _hours_by_day(hours_of))
    tree = replace(tree, whole_account=whole_account)
    models: dict[Hashable, EntityModel] = {}
    if model_loader is not None:
        for entity_id in {e for members in days.values() for e in members}:
            loaded = model_loader(entities[entity_id].level, str(entity_id))
            if loaded is not None:
                models[entity_id] = EntityModel(*loaded)
    if batch_forest_scores:
        models = with_day_scores(models, table, days)
    tests = day_tests(detector, table, tree.parents,
                      [(e, day, hours_of.get((e, day))) for day, members in sorted(days.items())
                       for e in sorted(members)],
                      whole_account.moves) if walk_tests else None
    found: list[DetectedAnomaly] = []
    for day, members in sorted(days.items()):
        hours: dict[Hashable, float | None] = {e: hours_of.get((e, day)) for e in members}
        found.extend(judge_account_day(detector, tree, day, sorted(members),
                                       currency=account.currency, models=models,
                                       as_of_hours=hours, account_tests=tests))
    return found


def _partial_hours(insights: pd.DataFrame, zone: ZoneInfo) -> dict[tuple[int, date], float]:
    """The local hour each partial row was read at, by (entity, day)."""
    partial = insights[~insights["is_complete"].astype(bool)]
    return {(int(e), d.date()): _local_hour(a, zone) for e, d, a in
            zip(partial["entity_id"], partial["date"], partial["as_of"], strict=True)}


def load_account_facts(session: Session, detector: AnomalyDetector, account_id: int,
                       analysis_date: date, days: Iterable[date], recheck_days: int = 2,
                       ) -> AccountFacts:
    """The whole account's facts for judging ``days`` (:mod:`~adsentinel.detect.account_facts`)
    over the history a detection up to ``analysis_date`` reads: every campaign's daily rows
    (about 1 % of an account's) and its budget holders' spend alone. What every chunk of a
    large account is given."""
    account = session.get(AdAccount, account_id)
    if account is None:
        raise NotFoundError(f"ad account {account_id} does not exist",
                            hint="list accounts with `adsentinel accounts`")
    first_day = analysis_date - timedelta(days=detector.history_days + recheck_days)
    first_day = max(first_day, comparable_since(session, account_id, analysis_date) or first_day)
    campaigns = set(session.scalars(select(Entity.id).where(
        Entity.account_id == account_id, Entity.level == "campaign")))
    insights = _load_insights(session, account_id, first_day, analysis_date, campaigns)
    frames: dict[Hashable, pd.DataFrame] = {
        e: f for e, f in prepare_daily_frames(insights).items()}
    return account_facts(
        detector, frames, account_budget_steps(spend_calendars(
            *_holder_spend(session, account_id, first_day, analysis_date))),
        days, _hours_by_day(_partial_hours(insights, zone_or_utc(account.timezone))))


def _holder_spend(session: Session, account_id: int, first: date, last: date,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every budget holder's (ad set's, campaign's) daily spend in ``[first, last]``, sorted
    by holder and day: ``(holder ids, days, spend)`` (millions of rows in a large account:
    read in bulk, :func:`~adsentinel.db.bulk.read_frame`)."""
    frame = read_frame(session, select(DailyInsight.entity_id, DailyInsight.day,
                                       DailyInsight.spend)
                       .join(Entity, Entity.id == DailyInsight.entity_id)
                       .where(Entity.account_id == account_id,
                              Entity.level.in_(sorted(BUDGET_HOLDERS)),
                              DailyInsight.day.between(first, last))
                       .order_by(DailyInsight.entity_id, DailyInsight.day),
                       ["entity_id", "day", "spend"])
    return (frame["entity_id"].to_numpy(dtype=np.int64),
            frame["day"].to_numpy().astype("datetime64[D]"),
            frame["spend"].to_numpy(dtype=float))


def _hours_by_day(hours_of: dict[tuple[int, date], float],
                  ) -> dict[date, dict[Hashable, float | None]]:
    by_day: dict[date, dict[Hashable, float | None]] = {}
    for (entity_id, day), hour in hours_of.items():
        by_day.setdefault(day, {})[entity_id] = hour
    return by_day


def account_facts_for_run(session: Session, detector: AnomalyDetector, account_id: int,
                          recheck_days: int = 2, analysis_date: date | None = None,
                          ) -> AccountFacts | None:
    """:func:`load_account_facts` for the days a run judges: ``analysis_date`` (default the
    account's latest day) and the ``recheck_days - 1`` before it (``None``: no data)."""
    latest = analysis_date or _latest_day(session, account_id)
    if latest is None:
        return None
    return load_account_facts(session, detector, account_id, latest,
                              _window_days(latest, recheck_days), recheck_days)


def _local_hour(as_of: Any, zone: ZoneInfo) -> float:
    """Local hour (0-24) of a partial day's ``as_of``; 24 (= complete) when unknown."""
    if as_of is None or (isinstance(as_of, float) and np.isnan(as_of)) or pd.isna(as_of):
        return 24.0
    local = as_utc(as_of).astimezone(zone)
    return local.hour + local.minute / 60.0


# --- storing ----------------------------------------------------------------------------------


def _upsert(session: Session, account_id: int, found: list[DetectedAnomaly], now: datetime,
            impact: dict[tuple[int, date, str], dict[str, Any]]) -> None:
    """Insert or update one row per (entity, day, metric); re-open retracted ones found again.
    ``impact`` holds each one's money at stake and run start (:mod:`adsentinel.detection.impact`)."""
    if not found:
        return
    rows = [
        {
            **impact[(int(a.entity_id), a.date, a.metric)],
            "account_id": account_id,
            "entity_id": int(a.entity_id),
            "day": a.date,
            "metric": a.metric,
            "detectors": "+".join(a.detectors),
            "actual": float(a.actual),
            "expected": float(a.expected),
            "lower": a.lower,
            "upper": a.upper,
            "direction": a.direction,
            "score": float(a.score),
            "severity": a.severity.value,
            "message": a.message,
            "drivers": json_ready(a.drivers),
            "is_partial_day": a.is_partial_day,
            "status": AnomalyStatus.open.value,
            "created_at": now,
            "updated_at": now,
        }
        for a in found
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = table_of(Anomaly)
    for start in range(0, len(rows), 500):
        statement = insert(table).values(rows[start : start + 500])
        excluded = statement.excluded
        changed: dict[str, Any] = {
            name: excluded[name]
            for name in (
                "detectors", "actual", "expected", "lower", "upper", "direction", "score",
                "severity", "message", "drivers", "is_partial_day", "updated_at",
                "impact_amount", "started", "duration_days",
            )
        }
        changed["status"] = case(
            (table.c.status == AnomalyStatus.retracted.value, AnomalyStatus.open.value),
            else_=table.c.status,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["entity_id", "day", "metric"], set_=changed
        )
        session.execute(statement)


def _retract_missing(
    session: Session,
    account_id: int,
    judged: set[tuple[int, date]],
    found: list[DetectedAnomaly],
    now: datetime,
) -> None:
    """Retract the open anomalies of judged (entity, day) pairs that the detector no longer finds."""
    if not judged:
        return
    still = {(int(a.entity_id), a.date, a.metric) for a in found}
    stored = session.execute(
        select(Anomaly.id, Anomaly.entity_id, Anomaly.day, Anomaly.metric).where(
            Anomaly.account_id == account_id,
            Anomaly.status == AnomalyStatus.open.value,
            Anomaly.day.in_({day for _, day in judged}),
        )
    ).all()
    gone = [
        row.id
        for row in stored
        if (row.entity_id, row.day) in judged and (row.entity_id, row.day, row.metric) not in still
    ]
    for start in range(0, len(gone), 500):
        session.execute(
            update(Anomaly)
            .where(Anomaly.id.in_(gone[start : start + 500]))
            .values(
                status=AnomalyStatus.retracted.value,
                status_by="detection: restated data is normal",
                status_at=now,
                updated_at=now,
                incident_id=None,
            )
        )


def _stored_for(session: Session, account_id: int, judged: set[tuple[int, date]]) -> list[Anomaly]:
    """The stored anomalies of the ``judged`` entity-days: read for their entities only (a
    chunk of a large account does not load the other chunks' anomalies of the same days)."""
    if not judged:
        return []
    session.expire_all()  # the bulk statements above bypassed the identity map
    days = sorted({day for _, day in judged})
    entity_ids = sorted({entity_id for entity_id, _ in judged})
    candidates: list[Anomaly] = []
    for start in range(0, len(entity_ids), 10_000):  # SQLite's bound-parameter limit
        candidates += session.scalars(select(Anomaly).where(
            Anomaly.account_id == account_id, Anomaly.day.in_(days),
            Anomaly.entity_id.in_(entity_ids[start:start + 10_000])))
    return [a for a in candidates if (a.entity_id, a.day) in judged]


def _link_hierarchy(stored: list[Anomaly], parents: dict[int, int | None]) -> None:
    """Link each anomaly to the highest ancestor's anomaly of the same day and metric
    (``parents``: each entity's parent id)."""
    live = [a for a in stored if a.status != AnomalyStatus.retracted.value]
    by_key = {(a.entity_id, a.day, a.metric): a for a in live}
    for anomaly in live:
        root = None
        parent_id = parents.get(anomaly.entity_id)
        while parent_id is not None:
            candidate = by_key.get((parent_id, anomaly.day, anomaly.metric))
            if candidate is not None and candidate.direction == anomaly.direction:
                root = candidate
            parent_id = parents.get(parent_id)
        anomaly.incident_id = root.id if root is not None else None
