"""The FastAPI application: the JSON API (``/api/v1``), the dashboard, and their shared plumbing.

:func:`create_app` builds one from :class:`~adsentinel.config.Settings`; ``adsentinel serve``
runs it with uvicorn. Domain errors become HTTP answers in one place (:func:`_status_of`):
not found 404, conflict 409, inconsistent input 400, database or broker away 503. A request
never gets a traceback; an unexpected error is logged and answered with a plain 500.

An API token pasted into a URL by mistake (``?token=ads_...``) is scrubbed from uvicorn's access
and error logs, from the input that a 422 answer quotes, and from the login redirect.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware

from adsentinel import __version__
from adsentinel.api import queries, routes_metrics, routes_status
from adsentinel.api.auth import LoginRequired, session_secret
from adsentinel.api.dispatch import JobDispatcher, choose_dispatcher
from adsentinel.api.routes_api import router as api_router
from adsentinel.api.routes_dashboard import render_error, render_invalid_input
from adsentinel.api.routes_dashboard import router as dashboard_router
from adsentinel.config import Settings
from adsentinel.db.engine import make_session_factory, open_database
from adsentinel.errors import AdsentinelError, NotFoundError, StorageError
from adsentinel.service.tokens import scrub_api_tokens

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).parent
STATIC_DIR = PACKAGE_DIR / "static"
SESSION_COOKIE = "adsentinel_session"
SESSION_MAX_AGE = 12 * 3600
#: answers that carry account data (JSON and the dashboard's pages): never kept by a browser
#: or proxy cache; static files and Plotly's bundle keep their own caching
PRIVATE_CONTENT_TYPES = ("application/json", "text/html")
#: Everything the pages load comes from this server: the dashboard works without internet.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' "
                           "'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; "
                           "form-action 'self'; base-uri 'none'")


class _ScrubApiTokensFilter(logging.Filter):
    """uvicorn logs every request line with its query string; the arguments are scrubbed in
    place (its access formatter unpacks them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(scrub_api_tokens(a) if isinstance(a, str) else a
                                for a in record.args)
        if isinstance(record.msg, str):
            record.msg = scrub_api_tokens(record.msg)
        return True


for _logger in ("uvicorn.access", "uvicorn.error"):
    logging.getLogger(_logger).addFilter(_ScrubApiTokensFilter())


def create_app(settings: Settings, *, dispatcher: JobDispatcher | None = None,
               session_factory: sessionmaker[Session] | None = None,
               jobs: str = "auto") -> FastAPI:
    """The API and dashboard on the database ``settings`` describe.

    ``dispatcher`` runs enqueued trainings and detections; by default it is chosen by ``jobs``
    (see :func:`adsentinel.api.dispatch.choose_dispatcher`). ``session_factory`` lets a caller
    share its own database handle; by default the database is opened (and migrated if fresh).
    """
    engine = None
    if session_factory is None:
        engine = open_database(settings)
        session_factory = make_session_factory(engine)
    chosen = dispatcher or choose_dispatcher(jobs, settings=settings,
                                             session_factory=session_factory)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        chosen.close()
        if engine is not None:
            engine.dispose()

    app = FastAPI(
        title="adsentinel",
        version=__version__,
        description="Anomalies of Meta Ads campaigns, ad sets and ads: read them, see what was "
        "expected, and say what they were. Authenticate with `Authorization: Bearer <token>` "
        "(`adsentinel tokens create --name NAME`).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.session_factory = session_factory
    app.state.dispatcher = chosen
    app.add_middleware(SessionMiddleware, secret_key=session_secret(settings),
                       session_cookie=SESSION_COOKIE, max_age=SESSION_MAX_AGE, same_site="lax",
                       https_only=settings.public_url.startswith("https://"))

    @app.middleware("http")
    async def security_headers(request: Request, call_next) -> Response:
        response = await call_next(request)
        if response.headers.get("content-type", "").startswith(PRIVATE_CONTENT_TYPES):
            response.headers.setdefault("Cache-Control", "no-store")  # no copy in any cache
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith(("/docs", "/redoc")):  # Swagger UI loads a CDN
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    _install_error_handlers(app)
    app.include_router(api_router)
    app.include_router(dashboard_router)
    app.include_router(routes_status.router)  # /api/v1/status, /health/ready
    routes_metrics.install(app)  # /metrics, and request counts and latencies by route

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _status_of(exc: AdsentinelError) -> int:
    if isinstance(exc, (NotFoundError, queries.PageOutOfRange)):
        return 404
    if isinstance(exc, queries.StatusConflict):
        return 409
    if isinstance(exc, StorageError):
        return 503
    return 400


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AdsentinelError)
    async def domain_error(request: Request, exc: AdsentinelError) -> Response:
        message = exc.message if not exc.hint else f"{exc.message} ({exc.hint})"
        code = _status_of(exc)
        if code >= 500:
            log.error("%s %s: %s", request.method, request.url.path, message)
        if _wants_html(request):
            return render_error(request, code, message)
        return JSONResponse({"detail": message}, status_code=code)

    @app.exception_handler(OperationalError)
    async def database_away(request: Request, exc: OperationalError) -> Response:
        log.error("%s %s: database error: %s", request.method, request.url.path, exc)
        message = "the database is not reachable right now; try again shortly"
        if _wants_html(request):
            return render_error(request, 503, message)
        return JSONResponse({"detail": message}, status_code=503)

    @app.exception_handler(LoginRequired)
    async def login_required(_request: Request, exc: LoginRequired) -> Response:
        from urllib.parse import quote

        target = quote(scrub_api_tokens(exc.next_path), safe="/")
        return RedirectResponse(f"/login?next={target}", status_code=303)

    @app.exception_handler(RequestValidationError)
    async def invalid_input(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own answer, except that the quoted input never hands a token back
        errors = json.loads(scrub_api_tokens(json.dumps(jsonable_encoder(exc.errors()))))
        if _wants_html(request):  # a dashboard page: its own error page, not JSON
            return render_invalid_input(request, errors)
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _wants_html(request) and exc.status_code != 405:
            return render_error(request, exc.status_code, str(exc.detail))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; the server log has the details"},
                            status_code=500)
