"""Fixtures of the operations tests: the API on a database holding :func:`build_ops_world`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from ops_world import OpsWorld, build_ops_world

from adsentinel.api import create_app
from adsentinel.service.tokens import create_token
from service_checks import private_redis_database


class OpsApi:
    """A test client, the world behind it, and tokens: ``admin`` sees every account,
    ``azul`` only the healthy one."""

    def __init__(self, client: TestClient, world: OpsWorld, tokens: dict[str, str]) -> None:
        self.client, self.world, self.tokens = client, world, tokens

    def get(self, path: str, token: str | None = "admin"):
        headers = {"Authorization": f"Bearer {self.tokens[token]}"} if token else {}
        return self.client.get(path, headers=headers)


@pytest.fixture
def ops_api(db_settings, engine, session_factory) -> Iterator[OpsApi]:
    world = build_ops_world(session_factory)
    tokens = {"admin": create_token(session_factory=session_factory, name="admin").secret,
              "azul": create_token(session_factory=session_factory, name="azul",
                                   accounts=[str(world.healthy)], read_only=True).secret}
    app = create_app(db_settings, session_factory=session_factory, jobs="in-process")
    with TestClient(app) as client:
        yield OpsApi(client, world, tokens)


@pytest.fixture
def redis_url(worker_id: str) -> Iterator[str]:
    """A Redis database of these tests' own (13, 14 under xdist), emptied before and after."""
    yield from private_redis_database(13, worker_id)
