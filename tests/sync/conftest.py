"""Fixtures of the sync tests: a Graph API served from recorded payloads, a clock that never
sleeps, and a client built the way the service builds it."""

from __future__ import annotations

import random
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import responses

sys.path.insert(0, str(Path(__file__).parent))

from graph_api import ACCOUNT, TOKEN, RecordedGraph

from adsentinel.sync.meta_client import ClientOptions, MetaAccountClient


class FakeClock:
    """Monotonic time that moves only when slept on; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def graph():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield RecordedGraph(mock)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_client(clock):
    def build(**option_changes) -> MetaAccountClient:
        options = replace(ClientOptions(), **option_changes)
        return MetaAccountClient(ACCOUNT, TOKEN, options=options, sleep=clock.sleep, clock=clock,
                                 rng=random.Random(7))
    return build


@pytest.fixture
def client_factory(clock):
    """The service's client factory, with the fake clock and optional option changes."""
    changes: dict = {}

    def factory(platform_account_id, token, options, on_progress=None):
        return MetaAccountClient(platform_account_id, token, options=replace(options, **changes),
                                 sleep=clock.sleep, clock=clock, rng=random.Random(7),
                                 on_progress=on_progress)
    factory.changes = changes
    return factory


@pytest.fixture
def emulator():
    """A Graph API emulator listening on 127.0.0.1 (see graph_emulator.py); stopped after."""
    from graph_emulator import GraphEmulator

    server = GraphEmulator()
    server.start()
    yield server
    server.stop()
