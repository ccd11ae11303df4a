"""The application factory behind ``adsentinel serve --workers N``: uvicorn starts N server
processes and each builds its own app (database pool, job dispatcher) from the environment."""

from __future__ import annotations

import os

from fastapi import FastAPI

#: how the parent ``adsentinel serve`` tells its server processes which dispatcher to use
SERVE_JOBS_ENV = "_ADSENTINEL_SERVE_JOBS"


def app_from_environment() -> FastAPI:
    """The app of one server process: settings from the environment, logging set up from them."""
    from adsentinel.api import create_app
    from adsentinel.config import load_settings
    from adsentinel.logging_setup import configure_from_settings

    settings = load_settings()
    configure_from_settings(settings)
    return create_app(settings, jobs=os.environ.get(SERVE_JOBS_ENV, "celery"))
