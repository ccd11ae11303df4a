"""Fixtures of the worker tests: a Redis database of their own and a production-like deployment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from worker_support import Deployment

from adsentinel.config import load_settings
from service_checks import private_redis_database


@pytest.fixture
def redis_url(worker_id: str) -> Iterator[str]:
    """A Redis database of this test process's own, emptied before and after."""
    yield from private_redis_database(10, worker_id)


@pytest.fixture
def deployment(fresh_postgres_url, redis_url, tmp_path) -> Iterator[Deployment]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    env.update({
        "ADSENTINEL_DATABASE_URL": fresh_postgres_url,
        "ADSENTINEL_BROKER_URL": redis_url,
        "ADSENTINEL_DATA_DIR": str(tmp_path / "data"),
        "ADSENTINEL_MODELS_STORAGE_PATH": str(tmp_path / "models"),
        "ADSENTINEL_MODEL_SIGNING_KEY": "test-signing-key",
        "ADSENTINEL_TASK_SOFT_TIME_LIMIT": "50",
        "ADSENTINEL_TASK_TIME_LIMIT": "60",
        "ADSENTINEL_BROKER_VISIBILITY_TIMEOUT": "70",
        "ADSENTINEL_LOCK_RETRY_SECONDS": "2",
        "ADSENTINEL_LOG_LEVEL": "INFO",
    })
    settings = load_settings(**{k.removeprefix("ADSENTINEL_").lower(): v
                                for k, v in env.items() if k.startswith("ADSENTINEL_")})
    result = Deployment(env, settings, tmp_path)
    yield result
    result.stop_all()
