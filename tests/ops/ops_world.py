"""A deployment's history to report on: two accounts, their syncs, trainings, detections,
anomalies and alert outbox, written straight into the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import update

from adsentinel.db.engine import session_scope
from adsentinel.db.models import (
    AdAccount,
    AlertChannel,
    AlertOutbox,
    Anomaly,
    Entity,
    SyncRun,
    TrainingRun,
)
from factories import LAST_DAY, small_account

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class OpsWorld:
    """Ids of what :func:`build_ops_world` wrote."""

    healthy: int  # "Loja Azul": synced, trained, detected; open anomalies and alerts
    broken: int  # "Loja Verde": token expired, last sync failed, never trained or detected
    entity: int  # an ad of the healthy account


def build_ops_world(session_factory) -> OpsWorld:
    azul = small_account(session_factory, name="Loja Azul")
    healthy, ad = azul["account"], azul["ids"]["a0"]
    with session_scope(session_factory) as session:
        session.execute(update(AdAccount).where(AdAccount.id == healthy).values(
            platform_account_id="act_1", credentials_ref="env:META_TOKEN"))
        broken = AdAccount(name="Loja Verde", platform_account_id="act_2",
                           credentials_ref="env:META_TOKEN_2",
                           needs_attention="token expired (190)")
        session.add(broken)
        session.flush()
        session.add_all([
            SyncRun(account_id=healthy, started_at=NOW - timedelta(minutes=70),
                    finished_at=NOW - timedelta(minutes=69), status="succeeded",
                    counts={"insight_rows": 120}),
            SyncRun(account_id=healthy, started_at=NOW - timedelta(minutes=10),
                    finished_at=NOW - timedelta(minutes=8), status="succeeded",
                    counts={"insight_rows": 500}),
            SyncRun(account_id=broken.id, started_at=NOW - timedelta(hours=5),
                    finished_at=NOW - timedelta(hours=5) + timedelta(seconds=3),
                    status="succeeded", counts={"insight_rows": 7}),
            SyncRun(account_id=broken.id, started_at=NOW - timedelta(minutes=20),
                    finished_at=NOW - timedelta(minutes=20), status="failed",
                    error="Meta refused the token (code 190)\nsecond line",
                    counts={"api_usage_percent": {"ad_account": 2.5}}),
            TrainingRun(account_id=healthy, started_at=NOW - timedelta(hours=6),
                        finished_at=NOW - timedelta(hours=6) + timedelta(seconds=42),
                        status="succeeded", duration_seconds=42.0,
                        counts={"campaign": {"trained": 1, "skipped": 0, "failed": 0},
                                "ad": {"trained": 3, "skipped": 2, "failed": 1}}),
        ])
        session.execute(update(Entity).where(Entity.account_id == healthy)
                        .values(judged_at=NOW - timedelta(minutes=5)))
        for metric, severity, status in (("cpl", "high", "open"), ("ctr", "high", "open"),
                                         ("spend", "critical", "open"),
                                         ("cpm", "low", "resolved")):
            session.add(_anomaly(healthy, ad, LAST_DAY, metric, severity, status))
        channel = AlertChannel(account_id=healthy, kind="webhook",
                               target="https://hooks.example/x")
        session.add(channel)
        session.flush()
        for key, status, attempts in (("a", "pending", 0), ("b", "pending", 2),
                                      ("c", "sent", 1), ("d", "failed", 8)):
            session.add(AlertOutbox(channel_id=channel.id, kind="webhook", idempotency_key=key,
                                    subject=key, payload={}, status=status, attempts=attempts))
    return OpsWorld(healthy=healthy, broken=broken.id, entity=ad)


def _anomaly(account_id: int, entity_id: int, day: date, metric: str, severity: str,
             status: str) -> Anomaly:
    return Anomaly(account_id=account_id, entity_id=entity_id, day=day, metric=metric,
                   detectors="robust_z", actual=10.0, expected=5.0, lower=3.0, upper=7.0,
                   direction="up", score=80.0, severity=severity, message=f"{metric} moved",
                   status=status)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
