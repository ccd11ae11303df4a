"""A small two-account world behind the API, on SQLite and PostgreSQL, with three tokens.

Accounts ``act_a`` and ``act_b`` are imported from CSV (30 days, 4 ads each, so campaigns, ad
sets and ads exist with their daily rows); anomalies are stored directly, since the factories'
data is regular and detection would find none.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_world import World, build_world
from fastapi.testclient import TestClient

from adsentinel.api import create_app
from adsentinel.api.dispatch import InProcessDispatcher


@pytest.fixture
def world(db_settings, engine, session_factory, tmp_path) -> World:
    return build_world(db_settings, engine, session_factory, tmp_path)


@pytest.fixture
def client(db_settings, session_factory, world) -> Iterator[TestClient]:
    """The app on the world's database, jobs run in a background thread of the test."""
    app = create_app(db_settings, session_factory=session_factory,
                     dispatcher=InProcessDispatcher(db_settings, session_factory))
    with TestClient(app) as test_client:
        yield test_client
