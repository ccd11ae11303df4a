"""Alerting service: plan messages from the stored anomalies, deliver the outbox, send digests.

Channels, mutes and calendars are set up in :mod:`adsentinel.alerts.config`; users'
feedback is written and read in :mod:`adsentinel.alerts.feedback_service`.

* :func:`plan_alerts` (called at the end of every detection run) turns an account's anomalies
  into incidents (:mod:`adsentinel.alerts.incidents`), applies the suppression rules
  (:mod:`adsentinel.alerts.suppression`) per channel and enqueues the due messages in the
  outbox, in one transaction. Idempotency keys make re-planning harmless: the hourly re-runs
  add nothing new unless an incident opened, worsened by a severity level or recovered.
* :func:`deliver_alerts` (every minute) claims due rows, sends them and records the outcome.
* :func:`send_digests` (every few minutes; acts once per channel and local day at
  ``alert_digest_time``) enqueues one summary per digest channel.
"""

from __future__ import annotations

import hashlib
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.account_calendar import calendar_labels
from adsentinel.alerts import outbox
from adsentinel.alerts.channels import ChannelView, DeliveryError, send_message
from adsentinel.alerts.config import AlertConfigError
from adsentinel.alerts.incidents import (
    OPENED,
    RECOVERED,
    UPDATE,
    AlertedIncident,
    AnomalyFact,
    Incident,
    IncidentKey,
    PlannedMessage,
    build_incidents,
    decide_messages,
    severity_rank,
)
from adsentinel.alerts.messages import (
    MessageContext,
    check_payload,
    digest_payload,
    incident_payload,
    subject_of,
)
from adsentinel.alerts.outbox import ClaimedMessage
from adsentinel.alerts.suppression import (
    AccountRules,
    MuteView,
    bypasses_quiet_hours,
    parse_clock,
    quiet_hours_end,
    suppression_reason,
)
from adsentinel.config import Settings
from adsentinel.db.engine import session_scope
from adsentinel.db.models import (
    AdAccount,
    AlertChannel,
    AlertOutbox,
    Anomaly,
    DailyInsight,
    Entity,
    MuteRule,
    utcnow,
)
from adsentinel.errors import NotFoundError
from adsentinel.scope import entities_in_campaigns
from adsentinel.timezones import as_utc, zone_or_utc

log = logging.getLogger(__name__)

#: Anomalies this many days back are read when planning (older open incidents too).
PLANNING_WINDOW_DAYS = 30
#: What a channel was already told is read back over this many days.
ALERTED_MEMORY_DAYS = 120
#: Sent and failed outbox rows are deleted after this many days (beyond the planner's memory).
OUTBOX_KEEP_DAYS = ALERTED_MEMORY_DAYS + 30

#: ``after_send(message)``: called after the receiver accepted a message, before it is recorded.
AfterSend = Callable[[ClaimedMessage], None]


# --- planning ---------------------------------------------------------------------------------


def plan_alerts(*, session_factory: sessionmaker[Session], settings: Settings, account_id: int,
                now: datetime | None = None,
                campaign_ids: Sequence[int] | None = None) -> dict[str, int]:
    """Enqueue the messages the account's instant channels need now; one transaction.

    ``campaign_ids`` limits planning to these campaigns and everything below them: a detection
    chunk plans only what it has just judged, so that another chunk's entities, not yet judged
    on the new day, are never taken for recovered.

    Returns ``{"incidents": n, "enqueued": n, "suppressed": n}``.
    """
    now = as_utc(now or utcnow())
    with session_scope(session_factory) as session:
        account = session.get(AdAccount, account_id)
        if account is None:
            raise NotFoundError(f"ad account {account_id} does not exist",
                                hint="list accounts with `adsentinel accounts`")
        channels = session.scalars(select(AlertChannel).where(
            AlertChannel.account_id == account_id, AlertChannel.is_active.is_(True),
            AlertChannel.digest.is_(False)).order_by(AlertChannel.id)).all()
        if not channels:
            return {"incidents": 0, "enqueued": 0, "suppressed": 0}
        zone = zone_or_utc(account.timezone)
        entities = _entities(session, account_id)
        scope = (None if campaign_ids is None
                 else entities_in_campaigns(entities.parents, campaign_ids))
        alerted = {c.id: [a for a in _alerted_incidents(session, c.id, now)
                          if scope is None or a.key.entity_id in scope] for c in channels}
        open_starts = [a.key.start_day for known in alerted.values() for a in known
                       if not a.recovered]
        local_today = now.astimezone(zone).date()
        since = min([local_today - timedelta(days=PLANNING_WINDOW_DAYS), *open_starts])
        facts = _anomaly_facts(session, account_id, since)
        incidents = [i for i in build_incidents(facts)
                     if scope is None or i.key.entity_id in scope]
        rules = _account_rules(session, account, entities, incidents, local_today)
        recovered = _recovered(session, incidents, facts)
        context = _message_context(account, entities, settings)
        messages: list[outbox.NewMessage] = []
        suppressed = 0
        for channel in channels:
            eligible = {}
            for incident in incidents:
                reason = suppression_reason(incident, rules, channel.min_severity)
                eligible[incident.key] = reason is None
                suppressed += reason is not None
            planned = decide_messages(incidents, alerted[channel.id], eligible=eligible,
                                      recovered=recovered)
            held_until = quiet_hours_end(now, zone,
                                         parse_clock(channel.quiet_start),
                                         parse_clock(channel.quiet_end)) or now
            for group in _one_message_per_entity(planned):
                message = _new_message(channel.id, group, context, local_today, held_until)
                if bypasses_quiet_hours(message.payload,
                                        critical_bypass=channel.critical_bypasses_quiet):
                    message = replace(message, next_attempt_at=now)
                messages.append(message)
        _drop_vanished_anomaly_ids(session, messages)
        enqueued = outbox.enqueue(session, messages, now)
    if enqueued:
        log.info("account %s: %d alert(s) enqueued from %d incident(s)", account_id, enqueued,
                 len(incidents))
    return {"incidents": len(incidents), "enqueued": enqueued, "suppressed": suppressed}


def _alerted_incidents(session: Session, channel_id: int, now: datetime) -> list[AlertedIncident]:
    """What a channel was already told, per incident identity, from its outbox rows."""
    rows = session.execute(
        select(AlertOutbox.kind, AlertOutbox.payload)
        .where(AlertOutbox.channel_id == channel_id,
               AlertOutbox.kind.in_((OPENED, UPDATE, RECOVERED)),
               AlertOutbox.created_at >= now - timedelta(days=ALERTED_MEMORY_DAYS))
        .order_by(AlertOutbox.id)
    ).all()
    known: dict[IncidentKey, dict[str, Any]] = {}
    for kind, payload in rows:
        for inc in (payload["incident"], *payload.get("also", ())):
            key = IncidentKey(int(inc["entity_id"]), inc["metric"], inc["direction"],
                              date.fromisoformat(inc["start_day"]))
            alone = {**payload, "incident": inc, "also": []}  # this incident's own view
            entry = known.setdefault(key, {"latest": date.min, "severity": "low",
                                           "recovered": False, "payload": alone})
            entry["latest"] = max(entry["latest"], date.fromisoformat(inc["latest_day"]))
            if severity_rank(inc["severity"]) > severity_rank(entry["severity"]):
                entry["severity"] = inc["severity"]
            if kind == RECOVERED:
                entry["recovered"] = True
            else:
                entry["payload"] = alone
    return [AlertedIncident(key, e["latest"], e["severity"], e["recovered"], e["payload"])
            for key, e in known.items()]


def _one_message_per_entity(planned: list[PlannedMessage]) -> list[list[PlannedMessage]]:
    """Messages of one planning pass grouped so that an entity's incidents opening (or
    recovering) together are one message: zero leads on an ad moves CPL, leads and conversion
    rate at once, and a person wants to hear about it once. Worst first in each group; updates
    stay single (each says which incident got worse)."""
    groups: dict[tuple[str, int], list[PlannedMessage]] = {}
    singles: list[list[PlannedMessage]] = []
    for plan in planned:
        if plan.kind == UPDATE:
            singles.append([plan])
        else:
            groups.setdefault((plan.kind, plan.key.entity_id), []).append(plan)
    ordered = [sorted(group, key=lambda p: (-severity_rank(p.severity),
                                            -(p.incident.latest.score if p.incident else 0.0),
                                            p.key.metric))
               for group in groups.values()]
    return ordered + singles


def _new_message(channel_id: int, group: list[PlannedMessage], context: MessageContext,
                 today: date, next_attempt_at: datetime) -> outbox.NewMessage:
    """The outbox row of one message about one or more incidents of an entity.

    Its key is the incident's key, or for several the hash of their sorted keys: re-planning
    the same group gives the same key, and the incidents in it are never planned again anyway
    (the planner reads them back from ``payload["incident"]`` and ``payload["also"]``).
    """
    keys = []
    for plan in group:
        extra = plan.severity if plan.kind == UPDATE else ""
        keys.append(outbox.idempotency_key(channel_id, plan.key.entity_id, plan.key.metric,
                                           plan.key.direction, plan.key.start_day, plan.kind,
                                           extra))
    key = keys[0] if len(keys) == 1 else hashlib.sha256("+".join(sorted(keys)).encode()).hexdigest()
    payload = incident_payload(group[0], context, today=today)
    payload["also"] = [incident_payload(plan, context, today=today)["incident"]
                       for plan in group[1:]]
    primary = group[0]
    anomaly_id = (primary.incident.latest.id if primary.incident is not None
                  else payload["incident"].get("anomaly_id"))
    return outbox.NewMessage(channel_id=channel_id, anomaly_id=anomaly_id, kind=primary.kind,
                             idempotency_key=key, subject=subject_of(payload), payload=payload,
                             next_attempt_at=next_attempt_at)


def _anomaly_facts(session: Session, account_id: int, since: date) -> list[AnomalyFact]:
    rows = session.scalars(select(Anomaly).where(Anomaly.account_id == account_id,
                                                 Anomaly.day >= since)).all()
    return [_fact(a) for a in rows]


def _fact(a: Anomaly) -> AnomalyFact:
    return AnomalyFact(
        id=a.id, entity_id=a.entity_id, day=a.day, metric=a.metric, direction=a.direction,
        severity=a.severity, score=a.score, actual=a.actual, expected=a.expected,
        status=a.status, incident_id=a.incident_id, message=a.message,
        is_partial_day=bool(a.is_partial_day), drivers=dict(a.drivers or {}),
        impact_amount=a.impact_amount, detectors=a.detectors)


@dataclass
class _EntityFacts:
    parents: dict[int, int | None] = field(default_factory=dict)
    paths: dict[int, str] = field(default_factory=dict)
    levels: dict[int, str] = field(default_factory=dict)


def _entities(session: Session, account_id: int) -> _EntityFacts:
    rows = session.execute(select(Entity.id, Entity.parent_id, Entity.level, Entity.name,
                                  Entity.platform_id).where(Entity.account_id == account_id)).all()
    facts = _EntityFacts()
    names = {}
    for row in rows:
        facts.parents[row.id] = row.parent_id
        facts.levels[row.id] = row.level
        names[row.id] = row.name or row.platform_id
    for entity_id in names:
        chain, node, seen = [], entity_id, set()
        while node is not None and node in names and node not in seen:
            seen.add(node)
            chain.append(names[node])
            node = facts.parents.get(node)
        facts.paths[entity_id] = " > ".join(reversed(chain))
    return facts


def _account_rules(session: Session, account: AdAccount, entities: _EntityFacts,
                   incidents: list[Incident], local_today: date) -> AccountRules:
    mutes = tuple(MuteView(m.id, m.entity_id, m.until, m.reason) for m in session.scalars(
        select(MuteRule).where(MuteRule.account_id == account.id).order_by(MuteRule.id)))
    calendar = calendar_labels(session, account.id)
    spend: dict[tuple[int, date], float] = {}
    if account.min_alert_spend is not None and incidents:
        wanted = {(i.latest.entity_id, i.latest.day) for i in incidents}
        rows = session.execute(select(DailyInsight.entity_id, DailyInsight.day, DailyInsight.spend)
                               .where(DailyInsight.entity_id.in_({e for e, _ in wanted}),
                                      DailyInsight.day.in_({d for _, d in wanted}))).all()
        spend = {(r.entity_id, r.day): float(r.spend) for r in rows}
    return AccountRules(parents=entities.parents, mutes=mutes, calendar=calendar,
                        min_alert_spend=account.min_alert_spend, spend=spend,
                        local_today=local_today)


def _recovered(session: Session, incidents: list[Incident],
               facts: list[AnomalyFact]) -> dict[IncidentKey, bool]:
    """An incident has recovered when its entity has a complete day after the incident's
    latest day without a live anomaly of the same metric and direction (days on which it goes on
    as a child of a bigger incident do not count as normal)."""
    if not incidents:
        return {}
    entity_ids = {i.latest.entity_id for i in incidents}
    newest = dict(session.execute(
        select(DailyInsight.entity_id, func.max(DailyInsight.day))
        .where(DailyInsight.entity_id.in_(entity_ids), DailyInsight.is_complete.is_(True))
        .group_by(DailyInsight.entity_id)).all())
    live = {(f.entity_id, f.metric, f.direction, f.day) for f in facts if f.status != "retracted"}
    result = {}
    for incident in incidents:
        latest = incident.latest
        # the entity may go on as a child of a bigger incident: that is not a recovery yet
        normal_day = latest.day + timedelta(days=1)
        while (latest.entity_id, latest.metric, latest.direction, normal_day) in live:
            normal_day += timedelta(days=1)
        complete = newest.get(latest.entity_id)
        result[incident.key] = complete is not None and complete >= normal_day
    return result


def _message_context(account: AdAccount, entities: _EntityFacts,
                     settings: Settings) -> MessageContext:
    return MessageContext(account_id=account.id, account_name=account.name,
                          currency=account.currency or "USD", paths=entities.paths,
                          levels=entities.levels, public_url=settings.public_url,
                          locale=account.locale or settings.locale)


def _drop_vanished_anomaly_ids(session: Session, messages: list[outbox.NewMessage]) -> None:
    """A recovery after retraction may name an anomaly row deleted since: keep the FK valid."""
    ids = {m.anomaly_id for m in messages if m.anomaly_id is not None}
    if not ids:
        return
    present = set(session.scalars(select(Anomaly.id).where(Anomaly.id.in_(ids))))
    for index, message in enumerate(messages):
        if message.anomaly_id is not None and message.anomaly_id not in present:
            messages[index] = outbox.NewMessage(**{**message.__dict__, "anomaly_id": None})


# --- digests ----------------------------------------------------------------------------------


def send_digests(*, session_factory: sessionmaker[Session], settings: Settings,
                 now: datetime | None = None) -> dict[str, int]:
    """Enqueue today's digest of every digest channel whose local time has reached
    ``alert_digest_time`` (once per channel and local day; empty digests are not sent), and
    prune outbox rows sent or failed more than :data:`OUTBOX_KEEP_DAYS` days ago.

    A digest lists the account's incidents that are not over (no normal complete day since)
    and were seen in the two local days before (yesterday's numbers may not be imported yet at
    digest time) or today, that pass the channel's rules, worst first. Returns
    ``{"digests": n}``.
    """
    now = as_utc(now or utcnow())
    enqueued = 0
    with session_scope(session_factory) as session:
        channels = session.scalars(select(AlertChannel).where(
            AlertChannel.is_active.is_(True), AlertChannel.digest.is_(True))
            .order_by(AlertChannel.id)).all()
        for channel in channels:
            account = session.get_one(AdAccount, channel.account_id)
            zone = zone_or_utc(account.timezone)
            local = now.astimezone(zone)
            if local.time() < settings.alert_digest_time:
                continue
            key = outbox.digest_key(channel.id, local.date())
            if session.scalar(select(AlertOutbox.id).where(AlertOutbox.idempotency_key == key)):
                continue
            since = local.date() - timedelta(days=2)
            facts = _anomaly_facts(session, account.id, since - timedelta(days=PLANNING_WINDOW_DAYS))
            entities = _entities(session, account.id)
            incidents = [i for i in build_incidents(facts)
                         if i.latest.day >= since and not i.dismissed]
            over = _recovered(session, incidents, facts)
            incidents = [i for i in incidents if not over[i.key]]
            rules = _account_rules(session, account, entities, incidents, local.date())
            shown = [i for i in incidents
                     if suppression_reason(i, rules, channel.min_severity) is None]
            if not shown:
                continue
            payload = digest_payload(_message_context(account, entities, settings), shown,
                                     day=local.date())
            enqueued += outbox.enqueue(session, [outbox.NewMessage(
                channel_id=channel.id, anomaly_id=None, kind="digest", idempotency_key=key,
                subject=subject_of(payload), payload=payload, next_attempt_at=now)], now)
    pruned = outbox.prune(session_factory, now - timedelta(days=OUTBOX_KEEP_DAYS))
    if pruned:
        log.info("%d old outbox row(s) pruned", pruned)
    return {"digests": enqueued}


# --- delivery ---------------------------------------------------------------------------------


def deliver_alerts(*, session_factory: sessionmaker[Session], settings: Settings,
                   now: datetime | None = None, limit: int = 100,
                   lease_seconds: float = outbox.DEFAULT_LEASE_SECONDS,
                   after_send: AfterSend | None = None,
                   rng: random.Random | None = None) -> dict[str, int]:
    """Send the outbox rows due at ``now``; returns ``{"sent", "retrying", "failed", "held"}``.

    ``after_send`` runs between a successful send and recording it (the window a crash can
    hit; tests use it to kill the process there).
    """
    now = as_utc(now or utcnow())
    counts = {"sent": 0, "retrying": 0, "failed": 0, "held": 0}
    zones: dict[int, ZoneInfo] = {}
    for message in outbox.claim_due(session_factory, now, limit=limit,
                                    lease_seconds=lease_seconds):
        if message.kind != "digest":
            zone = zones.get(message.account_id) or _account_zone(session_factory,
                                                                  message.account_id)
            zones[message.account_id] = zone
            held = quiet_hours_end(now, zone, parse_clock(message.quiet_start),
                                   parse_clock(message.quiet_end))
            if held is not None and not bypasses_quiet_hours(
                    message.payload, critical_bypass=message.critical_bypass):
                outbox.defer(session_factory, message.id, held)
                counts["held"] += 1
                continue
        try:
            send_message(message.channel, message.payload, message.idempotency_key, settings)
        except Exception as exc:  # one bad message must not stop the others
            if not isinstance(exc, DeliveryError):
                log.exception("alert %s could not be rendered or sent", message.id)
                exc = DeliveryError(f"{type(exc).__name__}: {exc}")
            status = outbox.mark_failed(session_factory, message, str(exc), now,
                                        max_attempts=settings.alert_max_attempts, rng=rng)
            counts["failed" if status == outbox.FAILED else "retrying"] += 1
            log_call = log.error if status == outbox.FAILED else log.warning
            log_call("alert %s to %s %s: attempt %d failed (%s)%s", message.id,
                     message.channel.kind, message.channel.target, message.attempts, exc,
                     "; giving up" if status == outbox.FAILED else "; will retry")
            continue
        if after_send is not None:
            after_send(message)
        outbox.mark_sent(session_factory, message.id, now)
        counts["sent"] += 1
        log.info("alert %s (%s) sent to %s %s, key %s", message.id, message.kind,
                 message.channel.kind, message.channel.target, message.idempotency_key[:12])
    return counts


def send_test_message(*, session_factory: sessionmaker[Session], settings: Settings,
                 channel_id: int) -> str:
    """Send a test message to a channel right away (not through the outbox) and return its
    idempotency key; raises :class:`AlertConfigError` with the receiver's answer when it
    fails."""
    with session_factory() as session:
        channel = session.get(AlertChannel, channel_id)
        if channel is None:
            raise NotFoundError(f"alert channel {channel_id} does not exist",
                                hint="see the ids with `adsentinel alerts channel list`")
        account = session.get_one(AdAccount, channel.account_id)
        view = ChannelView(channel.id, channel.kind, channel.target, channel.secret_ref)
        context = _message_context(account, _EntityFacts(), settings)
    key = f"test-{uuid.uuid4().hex}"
    try:
        send_message(view, check_payload(context, channel_id), key, settings)
    except DeliveryError as exc:
        raise AlertConfigError(f"channel {channel_id} ({view.kind} {view.target}) did not "
                               f"accept the test message: {exc}",
                               hint="check the target, the signing key variable and the SMTP "
                               "settings") from None
    return key


def _account_zone(session_factory: sessionmaker[Session], account_id: int) -> ZoneInfo:
    with session_factory() as session:
        return zone_or_utc(session.scalar(select(AdAccount.timezone).where(AdAccount.id == account_id)))
