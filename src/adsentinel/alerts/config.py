"""Setting up alerting: channels, mutes, an account's calendar and its minimum spend.

Slack and webhook URLs are secrets: a channel stores ``env:VAR`` (the variable holds the URL
where alerts are delivered), and what is listed or printed shows URLs masked.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.alerts.channel_targets import (
    ChannelView,
    channel_secrets,
    is_secret_ref,
    mask_url,
    scrub_secrets,
    shown_target,
)
from adsentinel.alerts.channels import CHANNEL_KINDS
from adsentinel.alerts.suppression import check_severity, parse_clock
from adsentinel.db.engine import session_scope
from adsentinel.db.models import (
    AdAccount,
    AlertChannel,
    AlertOutbox,
    CalendarDay,
    Entity,
    MuteRule,
)
from adsentinel.errors import AdsentinelError, InputFileError, InputProblem, NotFoundError

log = logging.getLogger(__name__)

CALENDAR_KINDS = ("holiday", "promotion")


class AlertConfigError(AdsentinelError):
    """A channel, mute, calendar day or feedback given by a user is not valid."""

    exit_code = 64  # EX_USAGE


def _checked_target(kind: str, target: str) -> str:
    """The target to store: ``env:VAR`` for Slack and webhooks (never a URL in clear), an
    address on one line for email."""
    target = target.strip()
    if kind in ("slack", "webhook", "apprise"):  # their URLs carry the tokens
        if "://" in target:
            raise AlertConfigError(
                f"a {kind} URL ({mask_url(target)}) is a secret and is not stored in clear",
                hint=f"export it where alerts are delivered, e.g. ADSENTINEL_{kind.upper()}_URL="
                     f"'https://...', and pass --target env:ADSENTINEL_{kind.upper()}_URL")
        if not is_secret_ref(target):
            raise AlertConfigError(
                f"{kind} target {target!r} is not env:VARIABLE_NAME",
                hint="pass the name of the environment variable holding the webhook URL, "
                     "e.g. --target env:ADSENTINEL_SLACK_URL")
    if kind == "email" and ("@" not in target or any(c.isspace() or ord(c) < 32 or c in "<>,;"
                                                     for c in target)):
        raise AlertConfigError(f"email target {target!r} is not one email address",
                               hint="e.g. --target ads@acme.com")
    return target


def add_channel(*, session_factory: sessionmaker[Session], account_id: int, kind: str,
                target: str, secret_ref: str | None = None, min_severity: str = "medium",
                quiet_start: str | None = None, quiet_end: str | None = None,
                digest: bool = False, critical_bypasses_quiet: bool = False) -> int:
    """Create an alert channel of an account after checking every field; returns its id.

    Slack and webhook targets are ``env:VAR`` references (see the module docstring)."""
    if kind not in CHANNEL_KINDS:
        raise AlertConfigError(f"channel kind {kind!r} is not known",
                               hint=f"use one of {', '.join(CHANNEL_KINDS)}")
    target = _checked_target(kind, target)
    if kind == "webhook" and not is_secret_ref(secret_ref):
        raise AlertConfigError(
            "a webhook channel needs --secret-ref env:VARIABLE (its HMAC signing key)",
            hint="export the key in that variable where deliveries run")
    try:
        check_severity(min_severity)
        parse_clock(quiet_start, name="quiet start")
        parse_clock(quiet_end, name="quiet end")
    except ValueError as exc:
        raise AlertConfigError(str(exc)) from None
    if (quiet_start is None) != (quiet_end is None):
        raise AlertConfigError("quiet hours need both a start and an end",
                               hint="e.g. --quiet 22:00-07:00")
    with session_scope(session_factory) as session:
        _account(session, account_id)
        channel = AlertChannel(account_id=account_id, kind=kind, target=target,
                               secret_ref=secret_ref, min_severity=min_severity,
                               quiet_start=quiet_start, quiet_end=quiet_end, digest=digest,
                               critical_bypasses_quiet=critical_bypasses_quiet, is_active=True)
        session.add(channel)
        session.flush()
        return channel.id


def list_channels(*, session_factory: sessionmaker[Session],
                  account_id: int | None = None) -> list[dict[str, Any]]:
    """Channels (of one account, or all) with their pending and failed message counts; a URL
    stored in clear by an older version is shown masked."""
    with session_factory() as session:
        query = select(AlertChannel, AdAccount.name).join(
            AdAccount, AdAccount.id == AlertChannel.account_id).order_by(AlertChannel.id)
        if account_id is not None:
            query = query.where(AlertChannel.account_id == account_id)
        counts = {(c, s): n for c, s, n in session.execute(
            select(AlertOutbox.channel_id, AlertOutbox.status, func.count())
            .group_by(AlertOutbox.channel_id, AlertOutbox.status))}
        return [{
            "id": c.id, "account": name, "kind": c.kind, "target": shown_target(c.target),
            "secret_ref": c.secret_ref, "min_severity": c.min_severity,
            "quiet": f"{c.quiet_start}-{c.quiet_end}" if c.quiet_start else None,
            "critical_bypasses_quiet": c.critical_bypasses_quiet,
            "digest": c.digest, "active": c.is_active,
            "pending": counts.get((c.id, "pending"), 0), "sent": counts.get((c.id, "sent"), 0),
            "failed": counts.get((c.id, "failed"), 0),
        } for c, name in session.execute(query)]


def list_outbox(*, session_factory: sessionmaker[Session], status: str | None = None,
                limit: int = 20) -> list[dict[str, Any]]:
    """The newest outbox rows with their attempts and last error; a channel's URL or key in an
    error (written by an older version) is shown masked."""
    with session_factory() as session:
        query = (select(AlertOutbox, AlertChannel).join(
            AlertChannel, AlertChannel.id == AlertOutbox.channel_id)
            .order_by(AlertOutbox.id.desc()).limit(limit))
        if status:
            query = query.where(AlertOutbox.status == status)
        rows = session.execute(query).all()
    return [{"id": r.id, "channel": r.channel_id, "kind": r.kind, "status": r.status,
             "attempts": r.attempts, "next_attempt": r.next_attempt_at, "subject": r.subject,
             "last_error": r.last_error and scrub_secrets(r.last_error, channel_secrets(
                 ChannelView(c.id, c.kind, c.target, c.secret_ref)))}
            for r, c in rows]


def remove_channel(*, session_factory: sessionmaker[Session], channel_id: int) -> None:
    """Delete a channel and its outbox rows."""
    with session_scope(session_factory) as session:
        channel = session.get(AlertChannel, channel_id)
        if channel is None:
            raise NotFoundError(f"alert channel {channel_id} does not exist",
                                hint="see the ids with `adsentinel alerts channel list`")
        session.execute(delete(AlertOutbox).where(AlertOutbox.channel_id == channel_id))
        session.delete(channel)


def set_min_alert_spend(*, session_factory: sessionmaker[Session], account_id: int,
                        amount: float | None) -> None:
    """Set (or clear, with ``None``) the daily spend below which nothing of the account alerts;
    it is compared with the alerting entity's own spend on the incident's latest day."""
    if amount is not None and not (amount >= 0 and amount < float("inf")):
        raise AlertConfigError(f"minimum spend must be a number >= 0, got {amount!r}")
    with session_scope(session_factory) as session:
        _account(session, account_id).min_alert_spend = amount


def find_entity(session: Session, account_id: int, ref: str) -> Entity:
    """An entity of the account by platform id (campaign, ad set or ad) or numeric id."""
    match = [Entity.platform_id == ref]
    if ref.isdigit():
        match.append(Entity.id == int(ref))
    rows = session.scalars(select(Entity).where(Entity.account_id == account_id, or_(*match))
                           .order_by(Entity.id)).all()
    if not rows:
        raise NotFoundError(f"no campaign, ad set or ad {ref!r} in account {account_id}",
                            hint="pass the platform id (as in the import) or the numeric id")
    exact = [e for e in rows if e.platform_id == ref]
    return (exact or rows)[0]


def add_mute(*, session_factory: sessionmaker[Session], account_id: int, entity_ref: str | None,
             until: date | None, reason: str | None, created_by: str | None) -> int:
    """Mute an entity and everything under it (or the whole account) until ``until``
    (inclusive; ``None`` = until removed). Returns the rule's id."""
    with session_scope(session_factory) as session:
        _account(session, account_id)
        entity_id = find_entity(session, account_id, entity_ref).id if entity_ref else None
        rule = MuteRule(account_id=account_id, entity_id=entity_id, until=until, reason=reason,
                        created_by=created_by)
        session.add(rule)
        session.flush()
        return rule.id


def list_mutes(*, session_factory: sessionmaker[Session],
               account_id: int | None = None) -> list[dict[str, Any]]:
    """Mute rules with the muted entity's level and platform id."""
    with session_factory() as session:
        query = (select(MuteRule, Entity.level, Entity.platform_id, AdAccount.name)
                 .join(AdAccount, AdAccount.id == MuteRule.account_id)
                 .outerjoin(Entity, Entity.id == MuteRule.entity_id).order_by(MuteRule.id))
        if account_id is not None:
            query = query.where(MuteRule.account_id == account_id)
        return [{"id": m.id, "account": name,
                 "entity": f"{level} {pid}" if pid else "whole account",
                 "until": m.until.isoformat() if m.until else None, "reason": m.reason,
                 "created_by": m.created_by} for m, level, pid, name in session.execute(query)]


def remove_mute(*, session_factory: sessionmaker[Session], mute_id: int) -> None:
    """Delete a mute rule."""
    with session_scope(session_factory) as session:
        rule = session.get(MuteRule, mute_id)
        if rule is None:
            raise NotFoundError(f"mute rule {mute_id} does not exist",
                                hint="see the ids with `adsentinel mute list`")
        session.delete(rule)


def add_calendar_days(*, session_factory: sessionmaker[Session], account_id: int,
                      days: Iterable[tuple[date, str, str | None]]) -> int:
    """Add (or relabel) calendar days ``(day, kind, label)`` of an account; returns how many."""
    days = list(days)
    for _, kind, _ in days:
        if kind not in CALENDAR_KINDS:
            raise AlertConfigError(f"calendar kind {kind!r} is not known",
                                   hint=f"use one of {', '.join(CALENDAR_KINDS)}")
    with session_scope(session_factory) as session:
        _account(session, account_id)
        existing = {row.day: row for row in session.scalars(
            select(CalendarDay).where(CalendarDay.account_id == account_id))}
        for day, kind, label in days:
            row = existing.get(day)
            if row is None:
                row = CalendarDay(account_id=account_id, day=day)
                session.add(row)
                existing[day] = row
            row.kind, row.label = kind, label
    return len(days)


def read_calendar_csv(path: Path) -> list[tuple[date, str, str | None]]:
    """Rows ``day,kind,label`` of a calendar file (header required; label optional).

    Raises :class:`InputFileError` naming every bad line; nothing is imported then.
    """
    problems: list[InputProblem] = []
    days: list[tuple[date, str, str | None]] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = {h.strip().lower() for h in (reader.fieldnames or [])}
            if not {"day", "kind"} <= header:
                raise InputFileError([InputProblem(str(path), 1, None,
                                                   "header must have columns day,kind[,label]")])
            for line, row in enumerate(reader, start=2):
                row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
                try:
                    day = date.fromisoformat(row["day"])
                except ValueError:
                    problems.append(InputProblem(str(path), line, "day",
                                                 f"{row['day']!r} is not YYYY-MM-DD"))
                    continue
                if row["kind"] not in CALENDAR_KINDS:
                    problems.append(InputProblem(str(path), line, "kind",
                                                 f"{row['kind']!r} is not one of "
                                                 f"{', '.join(CALENDAR_KINDS)}"))
                    continue
                days.append((day, row["kind"], row.get("label") or None))
    except OSError as exc:
        raise InputFileError([InputProblem(str(path), None, None, str(exc))]) from None
    if problems:
        raise InputFileError(problems, hint="fix the lines above; the file is imported whole")
    return days


def list_calendar(*, session_factory: sessionmaker[Session],
                  account_id: int) -> list[dict[str, Any]]:
    """An account's calendar days in order."""
    with session_factory() as session:
        return [{"day": d.day.isoformat(), "kind": d.kind, "label": d.label}
                for d in session.scalars(select(CalendarDay).where(
                    CalendarDay.account_id == account_id).order_by(CalendarDay.day))]


def remove_calendar_day(*, session_factory: sessionmaker[Session], account_id: int,
                        day: date) -> None:
    """Delete one calendar day of an account."""
    with session_scope(session_factory) as session:
        deleted = cast(CursorResult[Any], session.execute(delete(CalendarDay).where(
            CalendarDay.account_id == account_id, CalendarDay.day == day))).rowcount
        if not deleted:
            raise NotFoundError(f"{day.isoformat()} is not on account {account_id}'s calendar",
                                hint="see the days with `adsentinel calendar list`")


def _account(session: Session, account_id: int) -> AdAccount:
    account = session.get(AdAccount, account_id)
    if account is None:
        raise NotFoundError(f"ad account {account_id} does not exist",
                            hint="list accounts with `adsentinel accounts`")
    return account
