"""The application factory behind ``adsentinel serve --workers N``: uvicorn starts N server
processes and each builds its own app (database pool, job dispatcher) from the environment."""

from __future__ import annotations

import os

from fastapi import FastAPI

#: how the parent ``adsentinel serve`` tells its server processes which dispatcher to use
SERVE_JOBS_ENV = "_ADSENTINEL_SERVE_JOBS"


def app_from_environment() -> FastAPI:
    from adsentinel.api import create_app
    from adsentinel.cli.app import get_settings  # the settings, and the CLI's logging

    return create_app(get_settings(), jobs=os.environ.get(SERVE_JOBS_ENV, "celery"))
