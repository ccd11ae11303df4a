"""Where the real services are, and what a test does when one is missing."""

from __future__ import annotations

import os
from collections.abc import Iterator

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


def private_redis_database(first_index: int, worker_id: str) -> Iterator[str]:
    """URL of a Redis database of one test process's own (``first_index``, then one more per
    xdist worker), emptied before and after; for a fixture to ``yield from``."""
    import redis as redis_lib

    index = first_index + (int(worker_id[2:]) if worker_id.startswith("gw") else 0)
    url = REDIS_URL.rsplit("/", 1)[0] + f"/{index}"
    client = redis_lib.Redis.from_url(url)
    try:
        client.flushdb()
    except redis_lib.exceptions.ConnectionError as exc:
        service_missing(f"Redis at {url}", exc)
    yield url
    client.flushdb()
