"""Who is told what, and when (pure, no I/O): severity floors, quiet hours, mutes, the account
calendar and the minimum spend.

Everything here takes plain values (times already in the account's timezone where it says so),
so the rules can be read and tested on their own; :mod:`adsentinel.alerts.service` gathers
the values from the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from adsentinel.alerts.incidents import SEVERITIES, Incident, severity_rank

#: Days on the account's calendar (holidays, promotions) alert only from this severity up.
CALENDAR_MIN_SEVERITY = "high"
#: An incident whose newest anomaly is older than this many days is not opened any more (a
#: channel added today is not flooded with last month's incidents of a paused ad).
STALE_AFTER_DAYS = 3


def parse_clock(value: str | None, *, name: str = "time") -> time | None:
    """``"HH:MM"`` as a :class:`~datetime.time`; ``None`` stays ``None``."""
    if value is None or value == "":
        return None
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"{name} must be HH:MM (24-hour clock), got {value!r}") from None


def check_severity(value: str) -> str:
    """``value`` when it names a severity, else a ValueError listing the choices."""
    if value not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {value!r}")
    return value


def at_least(severity: str, minimum: str) -> bool:
    """True when ``severity`` is ``minimum`` or worse."""
    return severity_rank(severity) >= severity_rank(minimum)


def in_quiet_hours(local: time, start: time | None, end: time | None) -> bool:
    """Is the local clock time inside ``[start, end)``? A window may cross midnight
    (22:00-07:00); no window, or ``start == end``, is never quiet."""
    if start is None or end is None or start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def bypasses_quiet_hours(payload: Mapping[str, Any], *, critical_bypass: bool) -> bool:
    """True for a message sent even in quiet hours: on a channel with the critical bypass, the
    opening or worsening of an incident whose severity is critical (a budget typo overnight
    cannot wait). Recoveries, digests and everything less than critical wait."""
    incident = payload.get("incident") or {}
    return critical_bypass and payload.get("kind") in ("opened", "update") \
        and incident.get("severity") == "critical"


def quiet_hours_end(now: datetime, zone: ZoneInfo, start: time | None,
                    end: time | None) -> datetime | None:
    """When ``now`` (aware) is in the quiet window, the aware UTC moment the window ends;
    otherwise ``None``."""
    local = now.astimezone(zone)
    if not in_quiet_hours(local.time(), start, end):
        return None
    assert end is not None
    ends = datetime.combine(local.date(), end, tzinfo=zone)
    if ends <= local:
        ends = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=zone)
    return ends.astimezone(now.tzinfo)


@dataclass(frozen=True)
class MuteView:
    """A mute rule: ``entity_id`` None mutes the whole account; ``until`` is inclusive."""

    id: int
    entity_id: int | None
    until: date | None
    reason: str | None = None


def active_mute(entity_id: int, parents: Mapping[int, int | None], mutes: Iterable[MuteView],
                local_day: date) -> MuteView | None:
    """The mute rule silencing ``entity_id`` on ``local_day``: one on the entity, one of its
    ancestors (muting a campaign mutes its ad sets and ads) or the whole account."""
    lineage = set()
    node: int | None = entity_id
    while node is not None and node not in lineage:
        lineage.add(node)
        node = parents.get(node)
    for mute in mutes:
        if mute.until is not None and mute.until < local_day:
            continue
        if mute.entity_id is None or mute.entity_id in lineage:
            return mute
    return None


@dataclass(frozen=True)
class AccountRules:
    """An account's suppression facts for one planning run."""

    parents: Mapping[int, int | None]
    mutes: tuple[MuteView, ...]
    calendar: Mapping[date, str]
    min_alert_spend: float | None
    spend: Mapping[tuple[int, date], float]
    local_today: date


def suppression_reason(incident: Incident, rules: AccountRules, min_severity: str) -> str | None:
    """Why ``incident`` must not alert a channel with floor ``min_severity``; ``None`` = alert.

    The checks, in order: repeats a pattern a person dismissed (damped by feedback), stale
    (newest anomaly more than :data:`STALE_AFTER_DAYS` days before the local today), muted
    (entity, ancestor or account), spend of the entity on the incident's latest day below the
    account's ``min_alert_spend``, below the channel's severity floor, on a calendar day and
    below ``high``.
    """
    latest = incident.latest
    if incident.damped_by is not None:
        return f"repeats the pattern of anomaly {incident.damped_by}, marked not an incident"
    if (rules.local_today - latest.day).days > STALE_AFTER_DAYS:
        return f"stale: newest anomaly on {latest.day.isoformat()}"
    mute = active_mute(latest.entity_id, rules.parents, rules.mutes, rules.local_today)
    if mute is not None:
        return f"muted (rule {mute.id}{': ' + mute.reason if mute.reason else ''})"
    if rules.min_alert_spend is not None:
        spend = rules.spend.get((latest.entity_id, latest.day), 0.0)
        if spend < rules.min_alert_spend:
            return f"spend {spend:.2f} below the account's minimum {rules.min_alert_spend:.2f}"
    if not at_least(incident.severity, min_severity):
        return f"severity {incident.severity} below the channel's {min_severity}"
    label = rules.calendar.get(latest.day) or incident.calendar_label
    if label is not None and not at_least(incident.severity, CALENDAR_MIN_SEVERITY):
        return f"calendar day ({label}): only {CALENDAR_MIN_SEVERITY} and above alert"
    return None
