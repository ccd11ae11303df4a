"""The two-account world the API tests run against (see conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from adsentinel.db.engine import make_session_factory, open_database, session_scope
from adsentinel.db.models import AdAccount, Anomaly, Entity
from adsentinel.detect.impact import HARMFUL_DIRECTION
from adsentinel.ingest.csv_import import import_insights_csv
from adsentinel.service.tokens import create_token
from factories import insight_rows, write_csv

START = date(2026, 9, 1)
DAYS = 30
LAST_DAY = START + timedelta(days=DAYS - 1)


@dataclass
class World:
    """Ids of what the fixture created, and the tokens' secrets."""

    account_a: int
    account_b: int
    entities: dict[str, dict[str, int]]  # account key -> level -> one entity id of that level
    anomalies: dict[str, int]  # open_a, open_b, retracted_a, high_a_old
    tokens: dict[str, str] = field(default_factory=dict)  # full, scoped_a, read_only

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[token]}"}


def _anomaly(account_id: int, entity_id: int, day: date, metric: str, *, severity: str = "high",
             score: float = 80.0, status: str = "open") -> Anomaly:
    return Anomaly(account_id=account_id, entity_id=entity_id, day=day, metric=metric,
                   detectors="nb_rate", actual=45.1, expected=14.2, lower=8.0, upper=22.0,
                   direction=HARMFUL_DIRECTION[metric], score=score, severity=severity,
                   message=f"{metric.upper()} 45.10 vs 14.20 expected (3.2x)",
                   drivers={"leads": 0}, status=status)


def build_world(settings, engine, session_factory, tmp_path) -> World:
    """Import two accounts, store anomalies, create the three tokens."""
    for key in ("a", "b"):
        path = write_csv(tmp_path / f"{key}.csv",
                         insight_rows(days=DAYS, ads=4, start=START, account=f"act_{key}"))
        import_insights_csv(path, engine=engine)
    with session_scope(session_factory) as session:
        ids = {a.platform_account_id: a.id for a in session.scalars(select(AdAccount))}
        entities: dict[str, dict[str, int]] = {}
        for key in ("a", "b"):
            account_id = ids[f"act_{key}"]
            by_level = {}
            for level in ("campaign", "adset", "ad"):
                by_level[level] = session.scalar(
                    select(Entity.id).where(Entity.account_id == account_id,
                                            Entity.level == level).order_by(Entity.id).limit(1))
            entities[key] = by_level
        rows = {
            "open_a": _anomaly(ids["act_a"], entities["a"]["ad"], LAST_DAY, "cpl"),
            "open_b": _anomaly(ids["act_b"], entities["b"]["ad"], LAST_DAY, "cpl"),
            "retracted_a": _anomaly(ids["act_a"], entities["a"]["campaign"], LAST_DAY, "spend",
                                    severity="medium", score=62.0, status="retracted"),
            "high_a_old": _anomaly(ids["act_a"], entities["a"]["adset"], LAST_DAY - timedelta(5),
                                   "ctr", severity="critical", score=95.0),
        }
        session.add_all(rows.values())
        session.flush()
        anomalies = {name: row.id for name, row in rows.items()}
    world = World(ids["act_a"], ids["act_b"], entities, anomalies)
    world.tokens["full"] = create_token(session_factory=session_factory, name="full").secret
    world.tokens["scoped_a"] = create_token(session_factory=session_factory, name="scoped-a",
                                            accounts=["act_a"]).secret
    world.tokens["read_only"] = create_token(session_factory=session_factory, name="reader",
                                             read_only=True).secret
    return world


@dataclass
class OneAdApp:
    """One imported account of one ad over 20 days on SQLite, a token, and the app."""

    app: object
    secret: str
    entity_id: int


@contextmanager
def one_ad_app(tmp_path: Path, token_name: str, **settings_overrides) -> Iterator[OneAdApp]:
    """:class:`OneAdApp` with the settings ``settings_overrides`` (throttles, ...), its job
    dispatcher closed and its engine disposed afterwards."""
    from adsentinel.api import create_app
    from adsentinel.api.dispatch import InProcessDispatcher
    from adsentinel.config import load_settings

    settings = load_settings(data_dir=tmp_path / "data", **settings_overrides)
    engine = open_database(settings)
    factory = make_session_factory(engine)
    import_insights_csv(write_csv(tmp_path / "a.csv", insight_rows(days=20, ads=1)),
                        engine=engine)
    secret = create_token(session_factory=factory, name=token_name).secret
    with factory() as session:
        entity_id = session.query(Entity.id).filter(Entity.level == "ad").scalar()
    dispatcher = InProcessDispatcher(settings, factory)
    try:
        yield OneAdApp(create_app(settings, session_factory=factory, dispatcher=dispatcher),
                       secret, entity_id)
    finally:
        dispatcher.close()
        engine.dispose()
