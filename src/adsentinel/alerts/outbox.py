"""The alert outbox: messages are written in the database first and delivered from there.

* **Enqueue** (:func:`enqueue`) runs in the caller's transaction, with ``INSERT .. ON CONFLICT
  (idempotency_key) DO NOTHING``: planning the same message twice (every hourly run, two workers
  at once) leaves one row.
* **Claim** (:func:`claim_due`) is one committed ``UPDATE .. WHERE id IN (SELECT .. FOR UPDATE
  SKIP LOCKED) RETURNING``: it counts the attempt and leases the row (moves ``next_attempt_at``
  ``lease`` ahead), so two deliverers never take the same row, and on PostgreSQL they skip each
  other's rows instead of waiting. SQLite has one writer, which serialises the statement.
* **Send, then record** (:func:`mark_sent`). A process that dies between the two leaves the row
  pending with its lease: after the lease it is sent again *with the same idempotency key*, so
  nothing is lost and the repeat is detectable by the receiver.
* **Failures** (:func:`mark_failed`) retry with exponential backoff and jitter
  (:func:`retry_delay`) until ``alert_max_attempts``, then the row is ``failed`` with its last
  error (``adsentinel alerts outbox`` shows it); the channel's URL and key never reach that
  error in clear.
* **Pruning** (:func:`prune`): sent and failed rows are kept longer than the planner looks
  back (it reads what a channel was told from them), then deleted.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.alerts.channel_targets import ChannelView, channel_secrets, scrub_secrets
from adsentinel.db.engine import session_scope
from adsentinel.db.models import AlertChannel, AlertOutbox, table_of
from adsentinel.timezones import as_utc

PENDING, SENT, FAILED = "pending", "sent", "failed"
#: Backoff of the first retry, and the longest wait between two attempts.
RETRY_BASE_SECONDS = 30.0
RETRY_CAP_SECONDS = 3600.0
#: A claimed row not recorded as sent within this long is delivered again (same key).
DEFAULT_LEASE_SECONDS = 300.0


def idempotency_key(channel_id: int, entity_id: int, metric: str, direction: str,
                    start_day: date, kind: str, extra: str = "") -> str:
    """SHA-256 of what makes a message unique: channel, incident identity and message kind
    (plus e.g. the severity of an update, so each worse level is one message)."""
    text = "|".join(str(part) for part in (channel_id, entity_id, metric, direction,
                                           start_day.isoformat(), kind, extra))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def digest_key(channel_id: int, local_day: date) -> str:
    """Idempotency key of a channel's digest of one local day."""
    return hashlib.sha256(f"{channel_id}|digest|{local_day.isoformat()}".encode()).hexdigest()


def retry_delay(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """Wait before the next attempt after ``attempts`` failed ones: 30 s, 1 min, 2 min, ...
    capped at an hour, plus up to 25 % jitter so that failures do not retry in lock-step."""
    base = min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_CAP_SECONDS)
    return timedelta(seconds=base * (1.0 + 0.25 * (rng or random).random()))


@dataclass(frozen=True)
class NewMessage:
    """A row to enqueue."""

    channel_id: int
    anomaly_id: int | None
    kind: str
    idempotency_key: str
    subject: str
    payload: dict[str, Any]
    next_attempt_at: datetime


def enqueue(session: Session, messages: Sequence[NewMessage], now: datetime) -> int:
    """Insert ``messages`` in the caller's transaction; keys already present are skipped.

    Returns how many rows were new.
    """
    if not messages:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = [
        {"channel_id": m.channel_id, "anomaly_id": m.anomaly_id, "kind": m.kind,
         "idempotency_key": m.idempotency_key, "subject": m.subject, "payload": m.payload,
         "status": PENDING, "attempts": 0, "next_attempt_at": as_utc(m.next_attempt_at),
         "created_at": as_utc(now)}
        for m in messages
    ]
    inserted = 0
    for start in range(0, len(rows), 200):
        statement = (insert(table_of(AlertOutbox)).values(rows[start:start + 200])
                     .on_conflict_do_nothing(index_elements=["idempotency_key"])
                     .returning(table_of(AlertOutbox).c.id))
        inserted += len(session.execute(statement).all())
    return inserted


@dataclass(frozen=True)
class ClaimedMessage:
    """A leased outbox row, with its channel, ready to send."""

    id: int
    channel: ChannelView
    quiet_start: str | None
    quiet_end: str | None
    account_id: int
    kind: str
    idempotency_key: str
    payload: dict[str, Any]
    attempts: int
    critical_bypass: bool = False  # the channel sends critical incidents in quiet hours


def claim_due(session_factory: sessionmaker[Session], now: datetime, *, limit: int = 100,
              lease_seconds: float = DEFAULT_LEASE_SECONDS) -> list[ClaimedMessage]:
    """Lease up to ``limit`` due rows of active channels (oldest due first), counting the
    attempt, in one committed statement; see the module docstring."""
    now = as_utc(now)
    table = table_of(AlertOutbox)
    due = (
        select(AlertOutbox.id)
        .join(AlertChannel, AlertChannel.id == AlertOutbox.channel_id)
        .where(AlertOutbox.status == PENDING, AlertOutbox.next_attempt_at <= now,
               AlertChannel.is_active.is_(True))
        .order_by(AlertOutbox.next_attempt_at, AlertOutbox.id)
        .limit(limit)
    )
    with session_scope(session_factory) as session:
        if session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True, of=AlertOutbox)
        claimed_ids = session.scalars(
            update(table)
            .where(table.c.id.in_(due.scalar_subquery()))
            .values(attempts=table.c.attempts + 1,
                    next_attempt_at=now + timedelta(seconds=lease_seconds))
            .returning(table.c.id)
        ).all()
        if not claimed_ids:
            return []
        rows = session.execute(
            select(AlertOutbox, AlertChannel)
            .join(AlertChannel, AlertChannel.id == AlertOutbox.channel_id)
            .where(AlertOutbox.id.in_(claimed_ids))
            .order_by(AlertOutbox.id)
        ).all()
        return [
            ClaimedMessage(
                id=row.id,
                channel=ChannelView(channel.id, channel.kind, channel.target, channel.secret_ref),
                quiet_start=channel.quiet_start, quiet_end=channel.quiet_end,
                account_id=channel.account_id, kind=row.kind,
                idempotency_key=row.idempotency_key, payload=dict(row.payload),
                attempts=row.attempts, critical_bypass=bool(channel.critical_bypasses_quiet),
            )
            for row, channel in rows
        ]


def mark_sent(session_factory: sessionmaker[Session], message_id: int, now: datetime) -> None:
    """Record a delivered message (the receiver accepted it)."""
    with session_scope(session_factory) as session:
        session.execute(update(AlertOutbox).where(AlertOutbox.id == message_id)
                        .values(status=SENT, sent_at=as_utc(now), last_error=None))


def mark_failed(session_factory: sessionmaker[Session], message: ClaimedMessage, error: str,
                now: datetime, *, max_attempts: int,
                rng: random.Random | None = None) -> str:
    """Record a failed attempt: retry later with backoff, or ``failed`` after ``max_attempts``.
    Returns the row's new status."""
    status = FAILED if message.attempts >= max_attempts else PENDING
    error = scrub_secrets(error, channel_secrets(message.channel))
    values: dict[str, Any] = {"status": status, "last_error": error[:2000]}
    if status == PENDING:
        values["next_attempt_at"] = as_utc(now) + retry_delay(message.attempts, rng=rng)
    with session_scope(session_factory) as session:
        session.execute(update(AlertOutbox).where(AlertOutbox.id == message.id).values(**values))
    return status


def defer(session_factory: sessionmaker[Session], message_id: int, until: datetime) -> None:
    """Hold a claimed row until ``until`` (quiet hours) without counting the attempt."""
    table = table_of(AlertOutbox)
    with session_scope(session_factory) as session:
        session.execute(update(table).where(table.c.id == message_id)
                        .values(next_attempt_at=as_utc(until), attempts=table.c.attempts - 1))


def prune(session_factory: sessionmaker[Session], before: datetime) -> int:
    """Delete sent and failed rows created before ``before``; returns how many. Pending rows
    are never deleted."""
    with session_scope(session_factory) as session:
        return cast(CursorResult[Any], session.execute(delete(AlertOutbox).where(
            AlertOutbox.status.in_((SENT, FAILED)),
            AlertOutbox.created_at < as_utc(before)))).rowcount or 0
