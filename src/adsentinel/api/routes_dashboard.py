"""The dashboard: server-rendered pages (Jinja2), no front-end build step.

* ``/login``: paste an API token; the session cookie then holds only the token's id.
* ``/``: open anomalies by severity and account, newest first, each with its message.
* ``/entities/{entity_id}``: a chart per metric with the expected band and the anomalies marked,
  the entity's anomalies with buttons to acknowledge them or mark them false positive, and its
  children. Alert messages link here.

Every form carries the session's CSRF token in a hidden field, checked before anything changes;
the cookie is signed, HttpOnly and SameSite=Lax. Scope and read-only rules are the API's.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from adsentinel.api import queries
from adsentinel.api.auth import (
    Principal,
    csrf_matches,
    end_session,
    new_csrf_token,
    session_principal,
    start_session,
)
from adsentinel.api.charts import SEVERITY_COLOURS, metric_charts
from adsentinel.api.throttle import (
    THROTTLED_MESSAGE,
    TooManyRequests,
    auth_throttle,
    chart_queue,
    client_of,
    record_failed_authentication,
)
from adsentinel.api.schemas import SettableStatus
from adsentinel.api.series import entity_series, series_range
from adsentinel.db.models import AdAccount, Severity
from adsentinel.service.tokens import authenticate_token

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
#: statuses the entity page offers as buttons (the API allows every settable status)
BUTTON_STATUSES = (("acknowledged", "Acknowledge"), ("false_positive", "False positive"))

router = APIRouter(include_in_schema=False)


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = new_csrf_token()
    return token


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page with what every page needs (user, CSRF token, colours)."""
    principal = context.pop("principal", None)
    return TEMPLATES.TemplateResponse(
        request, template, {"principal": principal, "csrf_token": csrf_token(request),
                            "colours": SEVERITY_COLOURS, **context},
        status_code=status_code)


def render_error(request: Request, status_code: int, message: str) -> HTMLResponse:
    """The error page (used by the app's error handlers for dashboard paths)."""
    return render(request, "error.html", status_code=status_code, status_code_=status_code,
                  message=message, principal=session_principal(request))


def dashboard_user(request: Request) -> Principal:
    """The logged-in user of a dashboard page; otherwise off to the login page."""
    from adsentinel.api.app import LoginRequired

    principal = session_principal(request)
    if principal is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    return principal


User = Annotated[Principal, Depends(dashboard_user)]


def _safe_next(target: str | None) -> str:
    """Only local paths are followed after login (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next_: Annotated[str | None, Query(alias="next")] = None
               ) -> Response:
    if session_principal(request) is not None:
        return RedirectResponse(_safe_next(next_), status_code=303)
    return render(request, "login.html", next_path=_safe_next(next_), error=None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: Annotated[str, Form(max_length=300)] = "",
          csrf: Annotated[str, Form(alias="csrf_token", max_length=100)] = "",
          next_: Annotated[str, Form(alias="next", max_length=2000)] = "/") -> Response:
    if not csrf_matches(request, csrf):
        return render(request, "login.html", status_code=400, next_path=_safe_next(next_),
                      error="The form expired; please try again.")
    wait = auth_throttle(request.app).retry_after(client_of(request))
    if wait is not None:  # too many failed logins: not even a right token gets in for now
        refused = TooManyRequests(THROTTLED_MESSAGE, retry_after=wait)
        page = render(request, "login.html", status_code=refused.status_code,
                      next_path=_safe_next(next_), error=f"Too many failed logins from this "
                      f"address; try again in {refused.retry_after} s.")
        page.headers.update(refused.headers or {})
        return page
    found = authenticate_token(session_factory=request.app.state.session_factory,
                               secret=token.strip())
    if found is None:
        record_failed_authentication(request)
        return render(request, "login.html", status_code=401, next_path=_safe_next(next_),
                      error="This token is not valid (unknown or revoked). Create one with "
                            "`adsentinel tokens create --name NAME`.")
    start_session(request, found)  # a fresh session: no fixation of a pre-login cookie
    return RedirectResponse(_safe_next(next_), status_code=303)


@router.post("/logout")
def logout(request: Request,
           csrf: Annotated[str, Form(alias="csrf_token", max_length=100)] = "") -> Response:
    if csrf_matches(request, csrf):
        end_session(request)  # every copy of this cookie ends too
    return RedirectResponse("/login", status_code=303)


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, principal: User,
             account: Annotated[int | None, Query(ge=1, le=queries.INT32_MAX)] = None,
             severity: Severity | None = None) -> Response:
    with request.app.state.session_factory() as session:
        if account is not None:
            queries.get_account(session=session, principal=principal, account_id=account)
        rows, counts = queries.open_overview(session=session, principal=principal,
                                             account_id=account,
                                             severity=severity.value if severity else None)
        paths = {row.anomaly.id: " > ".join(
            e.name or e.platform_id for e in queries.entity_path(session, row.entity))
            for row in rows}
        accounts = queries.list_accounts(session=session, principal=principal)
    totals: Counter[str] = Counter()
    for by_severity in counts.values():
        totals.update(by_severity)
    return render(request, "overview.html", principal=principal, rows=rows, counts=counts,
                  totals=totals, severities=queries.SEVERITY_ORDER, paths=paths,
                  accounts=accounts, account=account,
                  severity=severity.value if severity else None)


@router.get("/entities/{entity_id}", response_class=HTMLResponse)
def entity_page(request: Request,
                entity_id: Annotated[int, PathParam(ge=1, le=queries.INT32_MAX)],
                principal: User,
                start: date | None = None, end: date | None = None) -> Response:
    """An entity's charts; 429 with Retry-After when the process's chart queue is full."""
    try:
        with chart_queue(request.app).admitted():
            return _entity_page(request, entity_id, principal, start, end)
    except TooManyRequests as busy:
        page = render_error(request, busy.status_code, busy.detail)
        page.headers.update(busy.headers or {})
        return page


def _entity_page(request: Request, entity_id: int, principal: Principal, start: date | None,
                 end: date | None) -> Response:
    settings = request.app.state.settings
    with request.app.state.session_factory() as session:
        entity = queries.get_entity(session=session, principal=principal, entity_id=entity_id)
        account = session.get(AdAccount, entity.account_id)
        start, end = series_range(start, end, last_day=entity.last_day)
        points = entity_series(session=session, settings=settings, entity_id=entity.id,
                               first=start, last=end)
        anomalies = queries.anomalies_of_entity(session=session, entity_id=entity.id,
                                                start=start, end=end)
        older_open = [a for a in queries.anomaly_page(
            session=session, principal=principal,
            filters=queries.AnomalyFilters(entity_id=entity.id, status="open"), page=1,
            page_size=50).items if a.day < start]
        path = queries.entity_path(session, entity)
        children = queries.children_of(session, entity)
        child_counts = queries.open_counts_by_entity(session, [c.id for c in children])
    charts = metric_charts(points, anomalies, account.currency if account else "")
    return render(request, "entity.html", principal=principal, entity=entity, account=account,
                  path=path, charts=charts, anomalies=anomalies + older_open, children=children,
                  child_counts=child_counts, start=start, end=end, buttons=BUTTON_STATUSES)


@router.post("/anomalies/{anomaly_id}/status")
def change_status(request: Request,
                  anomaly_id: Annotated[int, PathParam(ge=1, le=queries.INT64_MAX)],
                  principal: User,
                  status: Annotated[str, Form(max_length=32)] = "",
                  csrf: Annotated[str, Form(alias="csrf_token", max_length=100)] = "") -> Response:
    if not csrf_matches(request, csrf):
        return render_error(request, 403, "The form's security token is missing or stale; "
                                          "reload the page and try again.")
    if principal.read_only:
        return render_error(request, 403, f"The token {principal.name!r} is read-only: it "
                                          "cannot change anomalies.")
    allowed = {s.value for s in SettableStatus}
    if status not in allowed:
        return render_error(request, 422, f"Unknown status {status!r}; use one of "
                                          f"{', '.join(sorted(allowed))}.")
    with request.app.state.session_factory() as session:
        anomaly = queries.set_anomaly_status(session=session, principal=principal,
                                             anomaly_id=anomaly_id, status=status)
        session.commit()
        entity_id = anomaly.entity_id
    return RedirectResponse(f"/entities/{entity_id}#anomaly-{anomaly_id}", status_code=303)
