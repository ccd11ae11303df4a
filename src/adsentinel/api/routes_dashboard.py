"""The dashboard: server-rendered pages (Jinja2), no front-end build step, in English or
Brazilian Portuguese (:mod:`adsentinel.api.page_i18n`).

* ``/login``: paste an API token; the session cookie then holds only the token's id.
* ``/``: the incidents worst first (money at stake, then severity), open and medium or worse by
  default, with filters, pages of 50, CSV/XLSX export of the filtered list (``/export``), the
  status buttons, each account's status and a banner for an account whose sync is broken.
* ``/entities/{entity_id}``: a chart per metric with the expected band and the anomalies marked,
  the entity's anomalies with their status buttons, and its children. Alert messages link here.
* ``/language``: the language switch (a cookie); ``/api-reference``: the API, readable offline.

Every form carries the session's CSRF token in a hidden field, checked before anything changes;
the cookie is signed, HttpOnly and SameSite=Lax. Scope and read-only rules are the API's.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import date
from enum import Enum
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.routing import APIRoute

from adsentinel.api import anomaly_export, queries
from adsentinel.api.auth import (
    LoginRequired,
    Principal,
    csrf_matches,
    end_session,
    new_csrf_token,
    session_principal,
    start_session,
)
from adsentinel.api.chart_process import chart_process
from adsentinel.api.charts import METRIC_LABELS, SEVERITY_COLOURS, metric_charts
from adsentinel.api.incident_list import (
    PAGE_SIZE,
    SORTS,
    STATUS_CHOICES,
    anomaly_kind,
    dashboard_filters,
    incident_page,
)
from adsentinel.api.page_i18n import (
    DOMAIN,
    LANGUAGE_COOKIE,
    anomaly_message,
    make_templates,
    page_context,
    page_gettext,
    request_locale,
)
from adsentinel.api.schemas import SettableStatus
from adsentinel.api.series import CHARTED_METRICS, entity_series, series_range
from adsentinel.api.throttle import (
    THROTTLED_MESSAGE,
    TooManyRequests,
    auth_throttle,
    chart_queue,
    client_of,
    record_failed_authentication,
)
from adsentinel.db.models import AdAccount, Severity
from adsentinel.i18n import LOCALE_NAMES, SUPPORTED_LOCALES, language, supported_locale
from adsentinel.service.status import account_statuses
from adsentinel.service.tokens import authenticate_token

TEMPLATES = make_templates(Path(__file__).parent / "templates")
#: the status buttons, in the order shown; a button is hidden when the anomaly has its status
BUTTON_STATUSES = ("acknowledged", "resolved", "expected", "false_positive", "open")
#: anomaly metrics a filter can ask for (the charted ones and the forest's)
FILTER_METRICS = (*CHARTED_METRICS, "multivariate")
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600

class _WithoutEmptyFilters(APIRoute):
    """A GET whose query has empty values (a filter form submits its blank fields) is sent to
    the same URL without them, so that a blank field means "any" and the URL stays short."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def without_empty_values(request: Request) -> Response:
            items = request.query_params.multi_items()
            kept = [(name, value) for name, value in items if value != ""]
            if request.method == "GET" and len(kept) != len(items):
                target = request.url.path + (f"?{urlencode(kept)}" if kept else "")
                return RedirectResponse(target, status_code=303)
            return await handler(request)

        return without_empty_values


router = APIRouter(include_in_schema=False, route_class=_WithoutEmptyFilters)
#: Plotly.js under a name that changes with its version: browsers keep it for a year
PLOTLY_PATH = f"/vendor/plotly-{version('plotly')}.min.js"

Level = Enum("Level", {name: name for name in queries.LEVELS}, type=str)  # type: ignore[misc]
Sort = Enum("Sort", {name: name for name in SORTS}, type=str)  # type: ignore[misc]
StatusChoice = Enum("StatusChoice", {name: name for name in STATUS_CHOICES},  # type: ignore[misc]
                    type=str)
MetricChoice = Enum("MetricChoice", {name: name for name in FILTER_METRICS},  # type: ignore[misc]
                    type=str)


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = new_csrf_token()
    return token


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page with what every page needs (user, CSRF token, colours, the reader's language)."""
    principal = context.pop("principal", None)
    locale = request_locale(request)
    page = TEMPLATES.TemplateResponse(
        request, template, {"principal": principal, "csrf_token": csrf_token(request),
                            "colours": SEVERITY_COLOURS, "metric_labels": METRIC_LABELS,
                            "locales": [(code, LOCALE_NAMES[code]) for code in SUPPORTED_LOCALES],
                            "here": _here(request), **page_context(locale), **context},
        status_code=status_code)
    page.headers["Content-Language"] = locale.replace("_", "-")
    page.headers["Vary"] = "Accept-Language, Cookie"
    return page


def gettext_for(request: Request):
    """The ``dashboard`` catalog's ``gettext`` in the reader's language (for messages made in
    Python: login errors, refusals)."""
    return page_gettext(request_locale(request))


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def render_error(request: Request, status_code: int, message: str) -> HTMLResponse:
    """The error page (used by the app's error handlers for dashboard paths)."""
    return render(request, "error.html", status_code=status_code, status_code_=status_code,
                  message=message, principal=session_principal(request))


def render_invalid_input(request: Request, errors: list[dict[str, Any]]) -> HTMLResponse:
    """The error page for query or form values the page does not take (422): one line per
    value, naming it, what was given and what is allowed."""
    _ = gettext_for(request)
    lines = []
    for error in errors:
        name = ".".join(str(part) for part in error.get("loc", ())[1:]) or "?"
        lines.append(_("%(name)s=%(value)r: %(problem)s") % {
            "name": name, "value": error.get("input"), "problem": error.get("msg", "")})
    return render_error(request, 422, _("This page cannot use these values: %(problems)s") % {
        "problems": "; ".join(lines)})


def dashboard_user(request: Request) -> Principal:
    """The logged-in user of a dashboard page; otherwise off to the login page."""
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
    _ = gettext_for(request)
    if not csrf_matches(request, csrf):
        return render(request, "login.html", status_code=400, next_path=_safe_next(next_),
                      error=_("The form expired; please try again."))
    wait = auth_throttle(request.app).retry_after(client_of(request))
    if wait is not None:  # too many failed logins: not even a right token gets in for now
        refused = TooManyRequests(THROTTLED_MESSAGE, retry_after=wait)
        page = render(request, "login.html", status_code=refused.status_code,
                      next_path=_safe_next(next_), error=_("Too many failed logins from this "
                      "address; try again in %(seconds)s s.") % {"seconds": refused.retry_after})
        page.headers.update(refused.headers or {})
        return page
    found = authenticate_token(session_factory=request.app.state.session_factory,
                               secret=token.strip())
    if found is None:
        record_failed_authentication(request)
        return render(request, "login.html", status_code=401, next_path=_safe_next(next_),
                      error=_("This token is not valid (unknown or revoked). Create one with "
                              "`adsentinel tokens create --name NAME`."))
    start_session(request, found)  # a fresh session: no fixation of a pre-login cookie
    return RedirectResponse(_safe_next(next_), status_code=303)


@router.post("/logout")
def logout(request: Request,
           csrf: Annotated[str, Form(alias="csrf_token", max_length=100)] = "") -> Response:
    if csrf_matches(request, csrf):
        end_session(request)  # every copy of this cookie ends too
    return RedirectResponse("/login", status_code=303)


@dataclass(frozen=True)
class ListQuery:
    """The list's filters as the API takes them, and the dashboard's name of the sort."""

    filters: queries.AnomalyFilters
    sort: str


def list_query(account: Annotated[int | None, Query(ge=1, le=queries.INT32_MAX)] = None,
               start: date | None = None, end: date | None = None, level: Level | None = None,
               metric: MetricChoice | None = None, status: StatusChoice = StatusChoice["open"],
               min_severity: Severity = Severity.medium, severity: Severity | None = None,
               q: Annotated[str | None, Query(max_length=200)] = None,
               sort: Sort = Sort["money"]) -> ListQuery:
    """The filters of the list and of its export, from the query string (an exact
    ``severity``, as the account table's links ask, replaces the minimum)."""
    return ListQuery(queries.AnomalyFilters(
        account_id=account, start=start, end=end, level=level.value if level else None,
        metric=metric.value if metric else None, status=status.value,
        min_severity=None if severity else min_severity.value,
        severity=severity.value if severity else None,
        search=(q or "").strip() or None, sort=SORTS[sort.value]), sort.value)


Listing = Annotated[ListQuery, Depends(list_query)]


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, principal: User, listing: Listing,
             page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    """The incidents worst first, with each account's status."""
    with request.app.state.session_factory() as session:
        found = incident_page(session=session, principal=principal, filters=listing.filters,
                              page=page)
        accounts = queries.list_accounts(session=session, principal=principal)
    statuses = account_statuses(session_factory=request.app.state.session_factory,
                                account_filter=principal.account_filter,
                                reader_locale=request_locale(request))
    query = {k: v for k, v in request.query_params.items() if k != "page"}
    return render(request, "overview.html", principal=principal, found=found,
                  filters=listing.filters, sort=listing.sort, accounts=accounts,
                  statuses=statuses, broken=[a for a in accounts if a["needs_attention"]],
                  levels=queries.LEVELS, metrics=FILTER_METRICS, status_choices=STATUS_CHOICES,
                  severities=queries.SEVERITY_ORDER, sorts=SORTS, buttons=BUTTON_STATUSES,
                  page_link=lambda n: "/?" + urlencode({**query, "page": n}),
                  export_link=lambda fmt: "/export?" + urlencode({**query, "format": fmt}),
                  filtered=bool(query), page_size=PAGE_SIZE)


@router.get("/export")
def export(request: Request, principal: User, listing: Listing,
           format_: Annotated[str, Query(alias="format", pattern="^(csv|xlsx)$")] = "csv"
           ) -> Response:
    """The list as filtered, every page (grouped anomalies included), as CSV or XLSX: the
    API's export (:mod:`adsentinel.api.anomaly_export`) of the same query."""
    filename = f"adsentinel-incidents-{date.today().isoformat()}.{format_}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    with request.app.state.session_factory() as session:
        query = queries.anomaly_query(session=session, principal=principal,
                                      filters=dashboard_filters(listing.filters))
        if format_ == "csv":
            return StreamingResponse(
                anomaly_export.csv_stream(request.app.state.session_factory, query),
                media_type=anomaly_export.MEDIA_TYPES["csv"], headers=headers)
        body = anomaly_export.xlsx_bytes(session, query, queries.count_of(session, query))
    return Response(body, media_type=anomaly_export.MEDIA_TYPES["xlsx"], headers=headers)


@router.get("/language")
def choose_language(lang: Annotated[str, Query(max_length=20)] = "en",
                    next_: Annotated[str | None, Query(alias="next")] = None) -> Response:
    """The language switch: remembers the choice in a cookie for a year."""
    response = RedirectResponse(_safe_next(next_), status_code=303)
    chosen = supported_locale(lang)
    if chosen is None:
        response.delete_cookie(LANGUAGE_COOKIE)  # back to the browser's language
    else:
        response.set_cookie(LANGUAGE_COOKIE, chosen, max_age=LANGUAGE_COOKIE_AGE,
                            samesite="lax", httponly=True)
    return response


@router.get(PLOTLY_PATH)
def plotly_js(request: Request) -> Response:
    """Plotly.js, once per browser: cached for a year (the path names its version), gzipped
    for browsers that take it (4.8 MB become about 1.5 MB)."""
    headers = {"Cache-Control": "public, max-age=31536000, immutable", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(_plotly_gzipped(), media_type="text/javascript",
                        headers={**headers, "Content-Encoding": "gzip"})
    return Response(_plotly_plain(), media_type="text/javascript", headers=headers)


@router.get("/vendor/plotly.min.js")
def plotly_js_unversioned() -> FileResponse:
    """Plotly.js under its plain name, cached for a day."""
    return FileResponse(plotly_js_path(), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})


def plotly_js_path() -> Path:
    """Plotly's bundled, minified JavaScript, from the installed ``plotly`` package."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@lru_cache(maxsize=1)
def _plotly_plain() -> bytes:
    return plotly_js_path().read_bytes()


@lru_cache(maxsize=1)
def _plotly_gzipped() -> bytes:
    return gzip.compress(_plotly_plain(), compresslevel=6, mtime=0)


@router.get("/api-reference", response_class=HTMLResponse)
def api_reference(request: Request) -> Response:
    """The API's endpoints from its OpenAPI schema, as a plain page (no CDN: works offline)."""
    schema = request.app.openapi()
    operations = [(path, method.upper(), op) for path, methods in schema["paths"].items()
                  for method, op in methods.items() if isinstance(op, dict)]
    return render(request, "api_reference.html", principal=session_principal(request),
                  schema=schema, operations=operations)


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
                               first=start, last=end, run=chart_process().run)
        anomalies = queries.anomalies_of_entity(session=session, entity_id=entity.id,
                                                start=start, end=end)
        older_open = [a for a in queries.anomaly_page(
            session=session, principal=principal,
            filters=queries.AnomalyFilters(entity_id=entity.id, status="open"), page=1,
            page_size=50).items if a.day < start]
        path = queries.entity_path(session, entity)
        children = queries.children_of(session, entity)
        child_counts = queries.open_counts_by_entity(session, [c.id for c in children])
    currency, locale = (account.currency if account else ""), request_locale(request)
    charts = metric_charts(points, anomalies, currency, language(locale, DOMAIN),
                           lambda a: anomaly_message(a, currency, entity.level, locale))
    listed = anomalies + older_open
    return render(request, "entity.html", principal=principal, entity=entity, account=account,
                  path=path, charts=charts, anomalies=listed, children=children,
                  child_counts=child_counts, start=start, end=end, buttons=BUTTON_STATUSES,
                  plotly_src=PLOTLY_PATH,
                  money={a.id: queries.anomaly_money(a) for a in listed},
                  kinds={a.id: anomaly_kind(a) for a in listed},
                  started={a.id: queries.anomaly_started(a) for a in listed})


@router.post("/anomalies/{anomaly_id}/status")
def change_status(request: Request,
                  anomaly_id: Annotated[int, PathParam(ge=1, le=queries.INT64_MAX)],
                  principal: User,
                  status: Annotated[str, Form(max_length=32)] = "",
                  csrf: Annotated[str, Form(alias="csrf_token", max_length=100)] = "",
                  next_: Annotated[str | None, Form(alias="next", max_length=2000)] = None
                  ) -> Response:
    _ = gettext_for(request)
    if not csrf_matches(request, csrf):
        return render_error(request, 403, _("The form's security token is missing or stale; "
                                            "reload the page and try again."))
    if principal.read_only:
        return render_error(request, 403, _("The token %(name)r is read-only: it cannot change "
                                            "anomalies.") % {"name": principal.name})
    allowed = {s.value for s in SettableStatus}
    if status not in allowed:
        return render_error(request, 422, _("Unknown status %(status)r; use one of "
                                            "%(allowed)s.") % {"status": status,
                                                               "allowed": ", ".join(sorted(allowed))})
    with request.app.state.session_factory() as session:
        anomaly = queries.set_anomaly_status(session=session, principal=principal,
                                             anomaly_id=anomaly_id, status=status)
        session.commit()
        entity_id = anomaly.entity_id
    if next_:  # back to the list the button was pressed on
        return RedirectResponse(_safe_next(next_), status_code=303)
    return RedirectResponse(f"/entities/{entity_id}#anomaly-{anomaly_id}", status_code=303)
