"""Incidents: what one alert is about, built from the anomaly rows (pure, no I/O).

An anomaly row is one entity, day and metric, updated in place by every hourly run. An
*incident* is what a person wants one message about:

* its **head** anomalies are those not attached to an ancestor's (``incident_id`` is ``None``)
  of one entity, metric and direction on consecutive days: a CPL rise lasting three days is one
  incident, not three;
* its **children** are the anomalies whose ``incident_id`` points at one of its heads (the ads
  of a campaign that moved with it); a message lists the worst of them instead of sending one
  alert per ad;
* retracted anomalies (restated data made them normal) are not part of any incident; an
  incident with a head marked ``false_positive`` or ``expected`` is *dismissed*, and a head
  that is not marked, on the day after a dismissed (or damped) one, starts a new incident (a
  bigger problem the day after a false alarm must not be hidden by it);
* a head whose severity detection lowered because it repeats a dismissed pattern
  (``drivers["feedback"]``, see :mod:`adsentinel.detect.feedback_rules`) makes the incident
  *damped*: it does not alert.

:func:`decide_messages` compares the incidents of now with what a channel was already told and
says which messages are due: ``opened`` once per incident, ``update`` once per severity level
the incident worsens to, ``recovered`` once when it is over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

SEVERITIES = ("low", "medium", "high", "critical")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
DISMISSED_STATUSES = frozenset({"false_positive", "expected"})
RETRACTED = "retracted"

OPENED, UPDATE, RECOVERED, DIGEST = "opened", "update", "recovered", "digest"


def severity_rank(severity: str) -> int:
    """0 (low) to 3 (critical); an unknown name ranks below low."""
    return SEVERITY_RANK.get(severity, -1)


@dataclass(frozen=True)
class AnomalyFact:
    """The fields of a stored anomaly that alerting needs (a plain copy of the ORM row)."""

    id: int
    entity_id: int
    day: date
    metric: str
    direction: str
    severity: str
    score: float
    actual: float
    expected: float
    status: str
    incident_id: int | None
    message: str
    is_partial_day: bool = False
    drivers: Mapping[str, Any] = field(default_factory=dict)
    #: money at stake of the day in the account's currency (None: not stored for it)
    impact_amount: float | None = None
    #: the detectors that spoke (``nb_rate_3d+...``): how many days a test pooled
    detectors: str = ""


@dataclass(frozen=True)
class IncidentKey:
    """Identity of an incident: entity, metric, direction and the day it started."""

    entity_id: int
    metric: str
    direction: str
    start_day: date


@dataclass(frozen=True)
class Incident:
    """Consecutive head anomalies of one entity, metric and direction, and their children.

    ``heads`` are sorted by day; ``children`` holds the worst anomaly of each child entity,
    worst first.
    """

    heads: tuple[AnomalyFact, ...]
    children: tuple[AnomalyFact, ...] = ()

    @property
    def latest(self) -> AnomalyFact:
        """The newest day's anomaly: its numbers are what a message shows."""
        return self.heads[-1]

    @property
    def key(self) -> IncidentKey:
        first = self.heads[0]
        return IncidentKey(first.entity_id, first.metric, first.direction, first.day)

    @property
    def severity(self) -> str:
        """The worst severity the incident has reached so far."""
        return max((h.severity for h in self.heads), key=severity_rank)

    @property
    def dismissed(self) -> bool:
        """A person marked it false positive or expected: no more messages about it."""
        return any(h.status in DISMISSED_STATUSES for h in self.heads)

    @property
    def damped_by(self) -> int | None:
        """Id of the dismissed anomaly whose pattern the latest day repeats, if it does."""
        feedback = (self.latest.drivers or {}).get("feedback")
        return int(feedback["damped_by_anomaly"]) if feedback else None

    @property
    def calendar_label(self) -> str | None:
        """Label of the account calendar day the latest anomaly falls on, if any."""
        value = (self.latest.drivers or {}).get("calendar")
        return str(value) if value else None

    @property
    def impact_amount(self) -> float | None:
        """Money at stake of the incident's days so far (None when no day has an amount)."""
        amounts = [h.impact_amount for h in self.heads if h.impact_amount is not None]
        return sum(amounts) if amounts else None

    def duration_days(self, start_day: date | None = None) -> int:
        """Days from the start (or an earlier known start) to the latest day, inclusive."""
        start = min(start_day or self.heads[0].day, self.heads[0].day)
        return (self.latest.day - start).days + 1


def build_incidents(anomalies: Iterable[AnomalyFact]) -> list[Incident]:
    """Group anomaly rows into incidents (see the module docstring), worst first."""
    live = [a for a in anomalies if a.status != RETRACTED]
    heads = sorted((a for a in live if a.incident_id is None),
                   key=lambda a: (a.entity_id, a.metric, a.direction, a.day))
    runs: list[list[AnomalyFact]] = []
    for head in heads:
        previous = runs[-1][-1] if runs else None
        if (previous is not None
                and (previous.entity_id, previous.metric, previous.direction)
                == (head.entity_id, head.metric, head.direction)
                and head.day - previous.day <= timedelta(days=1)
                # what follows a dismissed (or damped) day is judged afresh, not hidden with it
                and not (_set_aside(previous) and not _set_aside(head))):
            runs[-1].append(head)
        else:
            runs.append([head])
    run_of_head = {head.id: index for index, run in enumerate(runs) for head in run}
    children: dict[int, dict[int, AnomalyFact]] = {}
    for child in live:
        if child.incident_id is None or child.incident_id not in run_of_head:
            continue
        worst = children.setdefault(run_of_head[child.incident_id], {})
        held = worst.get(child.entity_id)
        if held is None or (child.score, child.day) > (held.score, held.day):
            worst[child.entity_id] = child
    incidents = [
        Incident(tuple(run), tuple(sorted(children.get(index, {}).values(),
                                          key=lambda c: (-c.score, c.entity_id))))
        for index, run in enumerate(runs)
    ]
    return sorted(incidents, key=lambda i: (-severity_rank(i.severity), -i.latest.score,
                                            i.key.entity_id, i.key.metric))


def _set_aside(fact: AnomalyFact) -> bool:
    """Marked not an incident by a person, or damped by feedback as a repeat of one."""
    return fact.status in DISMISSED_STATUSES or bool((fact.drivers or {}).get("feedback"))


@dataclass(frozen=True)
class AlertedIncident:
    """What a channel was already told about one incident (read back from its outbox rows)."""

    key: IncidentKey
    latest_day: date
    severity: str
    recovered: bool
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class PlannedMessage:
    """One message due on a channel. ``key`` is the identity the channel knows the incident
    by (its first alerted start day), so a run whose first day was restated away keeps it."""

    kind: str
    key: IncidentKey
    incident: Incident | None
    severity: str
    previous: AlertedIncident | None = None
    reason: str | None = None


def match_alerted(incident: Incident, alerted: Iterable[AlertedIncident],
                  taken: set[IncidentKey] | frozenset[IncidentKey] = frozenset(),
                  ) -> AlertedIncident | None:
    """The still-open alerted incident that ``incident`` continues, if any: same entity, metric
    and direction, with days that overlap or touch (and not already ``taken`` by an earlier
    run)."""
    key = incident.key
    for known in alerted:
        if known.recovered or known.key in taken:
            continue
        if (known.key.entity_id, known.key.metric, known.key.direction) != (
                key.entity_id, key.metric, key.direction):
            continue
        if (incident.heads[0].day <= known.latest_day + timedelta(days=1)
                and incident.latest.day >= known.key.start_day):
            return known
    return None


def decide_messages(
    incidents: Iterable[Incident],
    alerted: Iterable[AlertedIncident],
    *,
    eligible: Mapping[IncidentKey, bool],
    recovered: Mapping[IncidentKey, bool],
) -> list[PlannedMessage]:
    """Which messages a channel needs now.

    Parameters
    ----------
    incidents : iterable of Incident
        The account's current incidents.
    alerted : iterable of AlertedIncident
        What this channel was already sent (or has queued), per incident.
    eligible : mapping
        ``incident.key -> bool``: passes the channel's severity floor, mutes, calendar and spend
        rules (see :mod:`adsentinel.alerts.suppression`). Missing means not eligible.
    recovered : mapping
        ``incident.key -> bool``: the entity's newest complete day is normal again.

    Rules: a new eligible incident gets ``opened``; an alerted, still eligible one that reached a
    worse severity gets one ``update`` per new level; an alerted one that recovered, was retracted (no longer
    among ``incidents``) or was dismissed by a person gets one ``recovered`` (with a reason).
    A dismissed incident never opens.
    """
    alerted = list(alerted)
    continued: set[IncidentKey] = set()
    planned: list[PlannedMessage] = []
    # oldest runs first: an alerted incident is continued by its own run, not by a newer one
    for incident in sorted(incidents, key=lambda i: (i.key.start_day, i.key.entity_id)):
        known = match_alerted(incident, alerted, continued)
        if known is not None:
            continued.add(known.key)
            if incident.dismissed:
                planned.append(PlannedMessage(RECOVERED, known.key, incident, incident.severity,
                                              known, reason="marked as not an incident"))
            elif recovered.get(incident.key, False):
                planned.append(PlannedMessage(RECOVERED, known.key, incident, incident.severity,
                                              known, reason="back to normal"))
            elif (severity_rank(incident.severity) > severity_rank(known.severity)
                  and eligible.get(incident.key, False)):
                planned.append(PlannedMessage(UPDATE, known.key, incident, incident.severity,
                                              known))
            continue
        if (incident.dismissed or recovered.get(incident.key, False)
                or not eligible.get(incident.key, False)):
            continue
        planned.append(PlannedMessage(OPENED, incident.key, incident, incident.severity))
    for known in alerted:
        if not known.recovered and known.key not in continued:
            planned.append(PlannedMessage(RECOVERED, known.key, None, known.severity, known,
                                          reason="restated data is normal"))
    return planned
