"""The JSON API under ``/api/v1``: thin routes that parse, call :mod:`adsentinel.api.queries`
inside one session, and shape the answer with :mod:`adsentinel.api.schemas`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from adsentinel import __version__
from adsentinel.api import anomaly_export, queries
from adsentinel.api.auth import Principal, api_principal, writer
from adsentinel.api.chart_process import chart_process
from adsentinel.api.dispatch import JobAlreadyQueued, JobKind
from adsentinel.api.schemas import (
    AccountOut,
    AnomalyOut,
    AnomalyPage,
    AnomalySort,
    AnomalyStatusFilter,
    AnomalyStatusIn,
    EnqueuedOut,
    EntityDetailOut,
    EntityNode,
    EntityPage,
    EntitySeriesOut,
    ErrorOut,
    ExportFormat,
    HealthOut,
    LevelFilter,
    SeverityFilter,
    TaskOut,
    TrainingStatusOut,
)
from adsentinel.api.series import entity_series, series_range
from adsentinel.api.throttle import chart_queue
from adsentinel.errors import NotFoundError
from adsentinel.service.anomaly_record import anomaly_places

router = APIRouter(prefix="/api/v1")

#: OpenAPI's documented responses of a route, by status code
Responses = dict[int | str, dict[str, Any]]

_errors: Responses = {401: {"model": ErrorOut, "description": "No token, or an invalid or revoked one."},
                      429: {"model": ErrorOut, "description": "Too many bad tokens from this address "
                            "lately (or, for charts, too many charts queued): wait Retry-After seconds."}}
_found: Responses = {**_errors, 404: {"model": ErrorOut,
                                      "description": "Unknown, or of an account the token does not see."}}
_bad: Responses = {400: {"model": ErrorOut,
                         "description": "Inconsistent input (start after end) or a body that is not JSON."}}
_write: Responses = {**_found, 403: {"model": ErrorOut, "description": "The token is read-only."}}
_unavailable: Responses = {503: {"model": ErrorOut, "description": "Database or broker unreachable."}}
_queued: Responses = {409: {"model": ErrorOut, "description": "The same job of this account is already "
                            "queued (in-process dispatcher): follow that one."}}

MetricName = Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$", description="e.g. cpl")]
Page = Annotated[int, Query(ge=1, le=1_000_000, description="1-based page number.")]
PageSize = Annotated[int, Query(ge=1, le=500)]
AccountId = Annotated[int, Path(ge=1, le=queries.INT32_MAX)]
EntityId = Annotated[int, Path(ge=1, le=queries.INT32_MAX)]
AnomalyId = Annotated[int, Path(ge=1, le=queries.INT64_MAX)]


def db_session(request: Request) -> Iterator[Session]:
    """One session per request, closed at the end (routes commit what they change)."""
    session = request.app.state.session_factory()
    try:
        yield session
    finally:
        session.close()


DbSession = Annotated[Session, Depends(db_session)]
Reader = Annotated[Principal, Depends(api_principal)]
Writer = Annotated[Principal, Depends(writer)]


#: The thread of ``/health``'s database round trip, one per server process: not the request
#: thread pool, where chart requests wait for their turn (up to ADSENTINEL_CHART_QUEUE_LIMIT
#: each holding a thread), nor several hops between the event loop and that pool.
_HEALTH_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="health-check")


def _select_one(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        session.execute(text("SELECT 1"))


@router.get("/health", response_model=HealthOut, tags=["system"], responses=_unavailable)
async def health(request: Request) -> dict[str, Any]:
    """Liveness and database reachability; needs no token (for load balancers)."""
    await asyncio.get_running_loop().run_in_executor(
        _HEALTH_THREAD, _select_one, request.app.state.session_factory)
    return {"status": "ok", "database": "ok", "version": __version__}


@router.get("/accounts", response_model=list[AccountOut], tags=["accounts"], responses=_errors)
def list_accounts(session: DbSession, principal: Reader) -> list[dict[str, Any]]:
    """The ad accounts this token sees, by name, with their open anomalies."""
    return queries.list_accounts(session=session, principal=principal)


@router.get("/accounts/{account_id}", response_model=AccountOut, tags=["accounts"],
            responses=_found)
def get_account(account_id: AccountId, session: DbSession, principal: Reader) -> dict[str, Any]:
    """One ad account."""
    return queries.account_detail(session=session, principal=principal, account_id=account_id)


@router.get("/accounts/{account_id}/entities", response_model=EntityPage, tags=["entities"],
            responses=_found)
def list_entities(account_id: AccountId, session: DbSession, principal: Reader,
                  level: LevelFilter | None = None,
                  status_: Annotated[str | None, Query(alias="status",
                                                       pattern=r"^[A-Za-z_]{1,32}$",
                                                       description="e.g. ACTIVE, PAUSED")] = None,
                  page: Page = 1, page_size: PageSize = 100) -> dict[str, Any]:
    """The account's entities as a flat list (campaigns, then ad sets, then ads)."""
    found = queries.entity_page(session=session, principal=principal, account_id=account_id,
                                level=level.value if level else None, status=status_,
                                page=page, page_size=page_size)
    return {"items": [queries.entity_dict(e) for e in found.items], "page": found.page,
            "page_size": found.page_size, "total": found.total}


@router.get("/accounts/{account_id}/entity-tree", response_model=list[EntityNode],
            tags=["entities"], responses=_found)
def entity_tree(account_id: AccountId, session: DbSession, principal: Reader,
                level: Annotated[LevelFilter | None, Query(
                    description="Deepest level shown (campaign: campaigns only).")] = None,
                status_: Annotated[str | None, Query(alias="status",
                                                     pattern=r"^[A-Za-z_]{1,32}$")] = None,
                ) -> list[dict[str, Any]]:
    """The account as a tree: campaign > ad set > ad. ``status`` keeps matching entities and
    the path down to them."""
    return queries.entity_tree(session=session, principal=principal, account_id=account_id,
                               level=level.value if level else None, status=status_)


@router.get("/entities/{entity_id}", response_model=EntityDetailOut, tags=["entities"],
            responses=_found)
def get_entity(entity_id: EntityId, session: DbSession, principal: Reader) -> dict[str, Any]:
    """One entity, the path down to it and its children."""
    return queries.entity_detail(session=session, principal=principal, entity_id=entity_id)


@router.get("/entities/{entity_id}/metrics", response_model=EntitySeriesOut, tags=["entities"],
            responses={**_found, **_bad})
def entity_metrics(entity_id: EntityId, request: Request, session: DbSession, principal: Reader,
                   start: date | None = None, end: date | None = None) -> dict[str, Any]:
    """Daily metrics of an entity with the expected value and bounds detection computes for each
    day, and its anomalies of the range. Default range: the last 60 days with data. Charts are
    computed one at a time per server process, in a process of their own (so that the server's
    other requests do not wait for them); past ADSENTINEL_CHART_QUEUE_LIMIT waiting, 429."""
    with chart_queue(request.app).admitted():
        entity = queries.get_entity(session=session, principal=principal, entity_id=entity_id)
        start, end = series_range(start, end, last_day=entity.last_day)
        points = entity_series(session=session, settings=request.app.state.settings,
                               entity_id=entity.id, first=start, last=end,
                               run=chart_process().run)
        anomalies = queries.anomalies_of_entity(session=session, entity_id=entity.id,
                                                start=start, end=end)
    return {"entity": queries.entity_dict(entity), "start": start, "end": end,
            "days": [{"day": p.day, "metrics": {m: vars(v) for m, v in p.metrics.items()}}
                     for p in points],
            "anomalies": _anomaly_dicts(session, anomalies)}


def _anomaly_dicts(session: Session, anomalies: list[Any]) -> list[dict[str, Any]]:
    places = anomaly_places(session, anomalies)
    return [queries.anomaly_dict(a, places.get(a.id)) for a in anomalies]


_exports: Responses = {200: {"description": "JSON by default; with format=csv or xlsx, the whole filtered "
                             "list (every page) as a file.",
                             "content": {anomaly_export.MEDIA_TYPES["csv"]: {},
                                         anomaly_export.MEDIA_TYPES["xlsx"]: {}}}}


@router.get("/anomalies", response_model=AnomalyPage, tags=["anomalies"],
            responses={**_found, **_bad, **_exports})
def list_anomalies(request: Request, session: DbSession, principal: Reader,
                   account_id: Annotated[int | None, Query(ge=1, le=queries.INT32_MAX)] = None,
                   level: LevelFilter | None = None,
                   entity_id: Annotated[int | None, Query(ge=1, le=queries.INT32_MAX)] = None,
                   metric: MetricName = None,
                   severity: SeverityFilter | None = None,
                   min_severity: Annotated[SeverityFilter | None, Query(
                       description="This severity and worse (medium hides lows).")] = None,
                   status_: Annotated[AnomalyStatusFilter | None, Query(alias="status")] = None,
                   start: date | None = None, end: date | None = None,
                   q: Annotated[str | None, Query(
                       max_length=200, description="Part of a name (account, campaign, ad set "
                       "or ad; any case) or a whole Meta id.")] = None,
                   good_news: Annotated[bool, Query(
                       description="Include good news (CPC, CPL, frequency down, CTR up ...), "
                       "left out by default: it is never an incident.")] = False,
                   sort: Annotated[AnomalySort | None, Query(
                       description="impact (money at stake, then severity), severity, day "
                       "(newest first) or score; default impact with status=open, else "
                       "day.")] = None,
                   format_: Annotated[ExportFormat, Query(
                       alias="format", description="json, or csv / xlsx: every page of the "
                       "filtered list as a file.")] = ExportFormat.json,
                   page: Page = 1, page_size: PageSize = 50) -> Any:
    """Anomalies, filtered and sorted; the default order for open anomalies is the money at
    stake first, then severity. A filter on an account or entity the token does not see is
    404. ``format=csv`` streams every matching anomaly (``page`` and ``page_size`` do not
    apply); ``format=xlsx`` is refused (400) beyond 100,000 rows."""
    filters = queries.AnomalyFilters(
        account_id=account_id, level=level.value if level else None, entity_id=entity_id,
        metric=metric, severity=severity.value if severity else None,
        min_severity=min_severity.value if min_severity else None,
        status=status_.value if status_ else None, start=start, end=end, search=q,
        good_news=good_news, sort=sort.value if sort else None)
    if format_ is not ExportFormat.json:
        return _export(request, session, principal, filters, format_.value)
    found = queries.anomaly_page(session=session, principal=principal, filters=filters,
                                 page=page, page_size=page_size)
    return {"items": _anomaly_dicts(session, found.items), "page": found.page,
            "page_size": found.page_size, "total": found.total}


def _export(request: Request, session: Session, principal: Principal,
            filters: queries.AnomalyFilters, kind: str) -> Response:
    query = queries.anomaly_query(session=session, principal=principal, filters=filters)
    filename = f"anomalies-{date.today().isoformat()}.{kind}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if kind == "csv":
        return StreamingResponse(
            anomaly_export.csv_stream(request.app.state.session_factory, query),
            media_type=anomaly_export.MEDIA_TYPES["csv"], headers=headers)
    total = queries.count_of(session, query)
    return Response(anomaly_export.xlsx_bytes(session, query, total),
                    media_type=anomaly_export.MEDIA_TYPES["xlsx"], headers=headers)


@router.get("/anomalies/{anomaly_id}", response_model=AnomalyOut, tags=["anomalies"],
            responses=_found)
def get_anomaly(anomaly_id: AnomalyId, session: DbSession, principal: Reader) -> dict[str, Any]:
    """One anomaly, with its money at stake, run, next step and Meta ids."""
    anomaly = queries.get_anomaly(session=session, principal=principal, anomaly_id=anomaly_id)
    return _anomaly_dicts(session, [anomaly])[0]


@router.patch("/anomalies/{anomaly_id}", response_model=AnomalyOut, tags=["anomalies"],
              responses={**_write, **_bad, 409: {"model": ErrorOut,
                                         "description": "The anomaly was retracted."}})
def patch_anomaly(anomaly_id: AnomalyId, change: AnomalyStatusIn, session: DbSession,
                  principal: Writer) -> dict[str, Any]:
    """Set an anomaly's status (acknowledged, resolved, false_positive, expected, or open to
    re-open it); records who (``by``, default the token's name) and when."""
    anomaly = queries.set_anomaly_status(session=session, principal=principal,
                                         anomaly_id=anomaly_id, status=change.status.value,
                                         by=change.by)
    session.commit()
    return _anomaly_dicts(session, [anomaly])[0]


@router.get("/accounts/{account_id}/training", response_model=TrainingStatusOut,
            tags=["jobs"], responses=_found)
def training_status(account_id: AccountId, request: Request, session: DbSession,
                    principal: Reader) -> dict[str, Any]:
    """The last training run of the account, its stored models per level, and why entities
    were skipped."""
    return queries.training_status(session=session, principal=principal,
                                   settings=request.app.state.settings, account_id=account_id)


def _enqueue(kind: JobKind, account_id: AccountId, request: Request, session: Session,
             principal: Principal) -> dict[str, Any]:
    queries.get_account(session=session, principal=principal, account_id=account_id)
    dispatcher = request.app.state.dispatcher
    try:
        task_id = dispatcher.enqueue(kind, account_id)
    except JobAlreadyQueued as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{exc.message} ({exc.hint})") from None
    return {"task_id": task_id, "kind": kind, "account_id": account_id,
            "dispatcher": dispatcher.name}


@router.post("/accounts/{account_id}/training", response_model=EnqueuedOut,
             status_code=status.HTTP_202_ACCEPTED, tags=["jobs"],
             responses={**_write, **_unavailable, **_queued})
def enqueue_training(account_id: AccountId, request: Request, session: DbSession,
                     principal: Writer) -> dict[str, Any]:
    """Queue a training of the account's per-entity models; follow it at /tasks/{task_id}."""
    return _enqueue("training", account_id, request, session, principal)


@router.post("/accounts/{account_id}/detection", response_model=EnqueuedOut,
             status_code=status.HTTP_202_ACCEPTED, tags=["jobs"],
             responses={**_write, **_unavailable, **_queued})
def enqueue_detection(account_id: AccountId, request: Request, session: DbSession,
                      principal: Writer) -> dict[str, Any]:
    """Queue a detection on the account; follow it at /tasks/{task_id}."""
    return _enqueue("detection", account_id, request, session, principal)


@router.get("/tasks/{task_id}", response_model=TaskOut, tags=["jobs"],
            responses={**_found, **_unavailable})
def task_state(task_id: Annotated[str, Path(max_length=64)], request: Request,
               principal: Reader) -> dict[str, Any]:
    """What became of an enqueued training or detection."""
    found = request.app.state.dispatcher.state(task_id)
    hidden = found is not None and (
        principal.sees(found.account_id) if found.account_id is not None
        else principal.account_ids is None) is False
    if found is None or hidden:
        raise NotFoundError(f"task {task_id} does not exist",
                            hint="use the task_id returned when the job was enqueued")
    return {"task_id": task_id, "state": found.state, "result": found.result,
            "error": found.error}
