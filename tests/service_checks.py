"""Where the real services are, and what a test does when one is missing."""

from __future__ import annotations

import os

import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "ADSENTINEL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("ADSENTINEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def service_missing(what: str, why: object) -> None:
    """Skip locally, fail in CI: a CI run must never pass by skipping real-service tests."""
    message = f"{what} is not reachable: {why}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set, so this is a failure, not a skip)")
    pytest.skip(message)
