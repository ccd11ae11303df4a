"""``GET /api/v1/status`` (what needs attention, per account) and ``GET /health/ready``
(whether this server can do its work: database, broker, model store)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from adsentinel.api.page_i18n import asked_locale
from adsentinel.api.routes_api import Reader
from adsentinel.service.status import account_statuses

router = APIRouter()
_errors: dict[int | str, dict[str, Any]] = {401: {"description": "No token, or an invalid or revoked one."}}


@router.get("/api/v1/status", tags=["system"], responses=_errors)
def status(request: Request, principal: Reader) -> dict[str, Any]:
    """Per account this token sees (``items``, by name): data freshness, last sync, training and
    detection with their outcome, models, open anomalies by severity, the alert outbox, and what
    needs attention (``attention``: one sentence per problem, empty when all is well), in the
    language the request asks for (``Accept-Language``), else the account's, else the
    ``LOCALE`` setting's."""
    statuses = account_statuses(session_factory=request.app.state.session_factory,
                                account_filter=principal.account_filter,
                                default_locale=request.app.state.settings.locale,
                                reader_locale=asked_locale(request))
    return {"items": [s.as_dict() for s in statuses],
            "needs_attention": [s.name for s in statuses if s.attention]}


@router.get("/health/ready", tags=["system"],
            responses={503: {"description": "A check failed; `checks` says which and why."}})
def ready(request: Request) -> JSONResponse:
    """Readiness for a load balancer or Kubernetes (no token): the database answers, the broker
    answers when the deployment uses one (PostgreSQL, Celery workers), the model store can be
    read. 200 when all pass, else 503; ``checks`` holds ``ok``, ``not used`` or the problem."""
    settings = request.app.state.settings
    checks = {"database": _database_check(request),
              "broker": _broker_check(request),
              "model_store": _model_store_check(settings)}
    healthy = all(value in ("ok", "not used") for value in checks.values())
    return JSONResponse({"status": "ready" if healthy else "not ready", "checks": checks},
                        status_code=200 if healthy else 503)


def _database_check(request: Request) -> str:
    try:
        with request.app.state.session_factory() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return f"unreachable: {type(exc).__name__}"
    return "ok"


def _broker_check(request: Request) -> str:
    """The broker matters when jobs go to Celery workers: a Celery dispatcher, or any
    deployment on PostgreSQL (production mode). The embedded SQLite default has none."""
    from adsentinel.api.dispatch import broker_reachable

    settings = request.app.state.settings
    uses_broker = (getattr(request.app.state.dispatcher, "name", "") == "celery"
                   or not settings.effective_database_url.startswith("sqlite"))
    if not uses_broker:
        return "not used"
    if broker_reachable(settings):
        return "ok"
    return f"the broker at {settings.masked()['broker_url']} does not answer"


def _model_store_check(settings) -> str:
    """The store opens (signing key readable) and its folder can be listed."""
    if not settings.use_isolation_forest:
        return "not used"
    from adsentinel.model_store.store import ModelStore

    try:
        store = ModelStore.from_settings(settings)
    except Exception as exc:  # noqa: BLE001 - ModelStoreError, ConfigError, OSError alike
        return f"cannot be opened: {getattr(exc, 'message', None) or exc}"
    return store.readiness_problem() or "ok"
