"""Scoring a detector's alarms against labelled incidents, per ad-day.

An **alarm** is an (entity, day) with at least one anomaly at or above the minimum severity.
It is scored per *ad-day*: an ad's alarm is one ad-day, an ad set's or a campaign's alarm counts
once for each of its ads that delivered that day (a campaign alarm on a day when one of its 40
ads broke is 1 true ad-day and 39 false ones: it asked 40 ads' owners to look). An alarmed ad-day
is **true** when a label covers that ad and day: the label's entity is the ad or one of its
parents, and the day is within ``start .. end + 1`` (the day after an incident still shows it in
yesterday-and-today pooling).

* **precision** (overall and per level of the alarming entity): true alarmed ad-days / alarmed
  ad-days;
* **false alarms per ad-month**: false alarmed ad-days per 30 delivering ad-days;
* **incident precision**: what a user is shown after hierarchy grouping, alarms without an
  alarming ancestor the same day, each counted once, true when it touches a labelled ad-day;
* **recall**: an incident is detected when an alarm on its entity, an ancestor or a descendant
  falls on its first or second day; also given per kind, and on the incidents an oracle could
  detect (:mod:`adsentinel.evaluation.oracle`); ``recall_in_window`` counts an alarm on any day
  of the incident (or the day after), for slow incidents such as a joint drift;
* **median days to detect**: first related alarm minus start, over detected incidents.

Counts are kept (:class:`AlarmCounts`) so that several seeds and worlds pool by adding them.
Pure: DataFrames in, counts out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import date, timedelta

import numpy as np
import pandas as pd

LEVELS = ("ad", "adset", "campaign")
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}

EntityKey = tuple[str, str, str]


@dataclass
class AlarmCounts:
    """Additive counts of one scored run; :meth:`summary` turns them into rates."""

    incidents: int = 0
    detected: int = 0
    detectable: int = 0
    detectable_detected: int = 0
    by_kind: dict[str, list[int]] = field(default_factory=dict)  # kind -> [n, detected, det., det.-detected]
    alarmed_ad_days: dict[str, int] = field(default_factory=dict)  # level -> ad-days alarmed
    true_ad_days: dict[str, int] = field(default_factory=dict)  # level -> of them true
    alarms: dict[str, int] = field(default_factory=dict)  # level -> entity-day alarms
    incident_alerts: int = 0
    true_incident_alerts: int = 0
    delivering_ad_days: int = 0
    found_in_window: dict[str, int] = field(default_factory=dict)  # kind -> found by end + 1
    false_by_metric: dict[str, int] = field(default_factory=dict)  # worst metric of false alarms
    entity_days: dict[str, int] = field(default_factory=dict)  # level -> delivering entity-days
    delays: list[int] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    def __add__(self, other: AlarmCounts) -> AlarmCounts:
        total = AlarmCounts()
        for spec in fields(AlarmCounts):
            mine, theirs = getattr(self, spec.name), getattr(other, spec.name)
            if isinstance(mine, (int, list)):
                setattr(total, spec.name, mine + theirs)
            else:
                merged: dict = {}
                for key in set(mine) | set(theirs):
                    a, b = mine.get(key), theirs.get(key)
                    if isinstance(a or b, list):
                        merged[key] = [x + y for x, y in zip(a or [0] * 4, b or [0] * 4, strict=True)]
                    else:
                        merged[key] = (a or 0) + (b or 0)
                setattr(total, spec.name, merged)
        return total

    def summary(self) -> dict[str, float | int | None]:
        """Rates for a table: recall, precision per level, false alarms, incident precision."""
        alarmed = sum(self.alarmed_ad_days.values())
        true = sum(self.true_ad_days.values())
        ad_months = max(self.delivering_ad_days / 30.0, 1e-9)
        row: dict[str, float | int | None] = {
            "incidents": self.incidents,
            "recall": _ratio(self.detected, self.incidents),
            "recall_in_window": _ratio(sum(self.found_in_window.values()), self.incidents),
            "detectable_incidents": self.detectable,
            "recall_detectable": _ratio(self.detectable_detected, self.detectable),
            "precision": _ratio(true, alarmed),
            "false_alarms_per_ad_month": round((alarmed - true) / ad_months, 3),
            "incident_alerts": self.incident_alerts,
            "incident_precision": _ratio(self.true_incident_alerts, self.incident_alerts),
            "median_days_to_detect": float(np.median(self.delays)) if self.delays else None,
        }
        for level in LEVELS:
            row[f"precision_{level}"] = _ratio(self.true_ad_days.get(level, 0),
                                               self.alarmed_ad_days.get(level, 0))
            row[f"alarms_{level}"] = self.alarms.get(level, 0)
        for metric, false in sorted(self.false_by_metric.items()):
            entity_months = max(sum(self.entity_days.values()) / 30.0, 1e-9)
            row[f"false_alarms_per_1000_entity_months_{metric}"] = round(
                1000 * false / entity_months, 1)
        for kind, (n, found, visible, visible_found) in sorted(self.by_kind.items()):
            row[f"recall_{kind}"] = _ratio(found, n)
            row[f"recall_detectable_{kind}"] = _ratio(visible_found, visible)
            row[f"recall_in_window_{kind}"] = _ratio(self.found_in_window.get(kind, 0), n)
        return row


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


@dataclass(frozen=True)
class Hierarchy:
    """Who is under whom and which ads delivered on which day, from ad-level insights."""

    parents: dict[EntityKey, EntityKey | None]
    ads_under: dict[EntityKey, tuple[EntityKey, ...]]
    delivering: dict[EntityKey, frozenset[date]]

    @classmethod
    def from_insights(cls, insights: pd.DataFrame) -> Hierarchy:
        """Build it from rows with ``date, account_id, campaign_id, adset_id, ad_id, impressions``."""
        parents: dict[EntityKey, EntityKey | None] = {}
        under: dict[EntityKey, list[EntityKey]] = defaultdict(list)
        links = insights[["account_id", "campaign_id", "adset_id", "ad_id"]].drop_duplicates()
        for account, campaign, adset, ad in links.astype(str).itertuples(index=False):
            campaign_key = (account, "campaign", campaign)
            adset_key = (account, "adset", adset)
            ad_key = (account, "ad", ad)
            parents[campaign_key] = None
            parents[adset_key] = campaign_key
            parents[ad_key] = adset_key
            for key in (campaign_key, adset_key, ad_key):
                under[key].append(ad_key)
        live = insights[insights["impressions"] > 0]
        days: dict[EntityKey, set[date]] = defaultdict(set)
        for account, ad, day in zip(live["account_id"].astype(str), live["ad_id"].astype(str),
                                    pd.to_datetime(live["date"]).dt.date, strict=True):
            days[(account, "ad", ad)].add(day)
        return cls(parents=parents,
                   ads_under={k: tuple(dict.fromkeys(v)) for k, v in under.items()},
                   delivering={k: frozenset(v) for k, v in days.items()})

    def ancestors(self, key: EntityKey) -> list[EntityKey]:
        """Parent, grandparent, ... of ``key``."""
        found = []
        up = self.parents.get(key)
        while up is not None:
            found.append(up)
            up = self.parents.get(up)
        return found

    def alarmed_ad_days(self, key: EntityKey, day: date) -> list[tuple[EntityKey, date]]:
        """The ad-days an alarm of ``key`` on ``day`` asks someone to look at (at least one)."""
        ads = [ad for ad in self.ads_under.get(key, (key,))
               if day in self.delivering.get(ad, frozenset())]
        return [(ad, day) for ad in ads] or [(key, day)]


def labelled_ad_days(labels: pd.DataFrame, hierarchy: Hierarchy) -> set[tuple[EntityKey, date]]:
    """Every (ad, day) that a label covers, its day after included."""
    covered: set[tuple[EntityKey, date]] = set()
    for label in labels.itertuples(index=False):
        key = (str(label.account_id), str(label.entity_type), str(label.entity_id))
        start = date.fromisoformat(str(label.start_date))
        end = date.fromisoformat(str(label.end_date)) + timedelta(days=1)
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        for ad in hierarchy.ads_under.get(key, (key,)):
            covered.update((ad, d) for d in days)
    return covered


def delivering_entity_days(hierarchy: Hierarchy, first_day: date, last_day: date) -> dict[str, int]:
    """Per level, the entity-days with delivery between ``first_day`` and ``last_day``."""
    days_of: dict[EntityKey, set[date]] = defaultdict(set)
    for ad, days in hierarchy.delivering.items():
        live = {d for d in days if first_day <= d <= last_day}
        days_of[ad] |= live
        for up in hierarchy.ancestors(ad):
            days_of[up] |= live
    totals: dict[str, int] = {}
    for key, entity_days in days_of.items():
        totals[key[1]] = totals.get(key[1], 0) + len(entity_days)
    return totals


def score_run(
    anomalies: pd.DataFrame,
    labels: pd.DataFrame,
    hierarchy: Hierarchy,
    *,
    first_day: date,
    last_day: date,
    min_severity: str = "medium",
    detectable: dict[str, bool] | None = None,
) -> AlarmCounts:
    """Count ``anomalies`` (one row per entity, day and metric) against ``labels``.

    Only days ``first_day .. last_day`` are scored, and only incidents starting in them.
    ``detectable`` maps ``incident_id`` to the oracle's verdict (missing: not detectable).
    """
    counts = AlarmCounts()
    floor = SEVERITY_RANK[min_severity]
    picked = anomalies[anomalies["severity"].map(SEVERITY_RANK) >= floor]
    worst_metric: dict[tuple, tuple[float, str]] = {}
    for a, level, e, d, metric, score in picked[
            ["account_id", "entity_type", "entity_id", "date", "metric", "score"]
    ].itertuples(index=False):
        alarm = (str(a), str(level), str(e), pd.Timestamp(d).date())
        if first_day <= alarm[3] <= last_day:
            worst_metric[alarm] = max(worst_metric.get(alarm, (-1.0, "")), (float(score), metric))
    alarms = set(worst_metric)
    covered = labelled_ad_days(labels, hierarchy)
    for *key, day in alarms:
        level = key[1]
        ad_days = hierarchy.alarmed_ad_days(tuple(key), day)
        counts.alarms[level] = counts.alarms.get(level, 0) + 1
        counts.alarmed_ad_days[level] = counts.alarmed_ad_days.get(level, 0) + len(ad_days)
        true = sum(ad_day in covered for ad_day in ad_days)
        counts.true_ad_days[level] = counts.true_ad_days.get(level, 0) + true
        if not true:
            metric = worst_metric[(*key, day)][1]
            counts.false_by_metric[metric] = counts.false_by_metric.get(metric, 0) + 1
    counts.delivering_ad_days = sum(
        sum(first_day <= d <= last_day for d in days) for days in hierarchy.delivering.values())
    counts.entity_days = delivering_entity_days(hierarchy, first_day, last_day)
    for *key, day in alarms:
        if any((*up, day) in alarms for up in hierarchy.ancestors(tuple(key))):
            continue  # shown under its ancestor's incident
        counts.incident_alerts += 1
        counts.true_incident_alerts += any(
            ad_day in covered for ad_day in hierarchy.alarmed_ad_days(tuple(key), day))
    _score_recall(counts, alarms, labels, hierarchy, first_day, last_day, detectable or {})
    return counts


def _score_recall(counts: AlarmCounts, alarms: set[tuple], labels: pd.DataFrame,
                  hierarchy: Hierarchy, first_day: date, last_day: date,
                  detectable: dict[str, bool]) -> None:
    by_entity: dict[EntityKey, list[date]] = defaultdict(list)
    for *entity, day in alarms:
        by_entity[tuple(entity)].append(day)
    for label in labels.itertuples(index=False):
        start = date.fromisoformat(str(label.start_date))
        if not first_day <= start <= last_day:
            continue
        end = date.fromisoformat(str(label.end_date))
        key = (str(label.account_id), str(label.entity_type), str(label.entity_id))
        family = {key, *hierarchy.ancestors(key)}
        for ad in hierarchy.ads_under.get(key, ()):
            family.add(ad)
            if (adset := hierarchy.parents[ad]) is not None:
                family.add(adset)
        hits = [d for entity in family for d in by_entity.get(entity, [])
                if start <= d <= end + timedelta(days=1)]
        found = bool(hits) and (min(hits) - start).days <= 1
        visible = bool(detectable.get(str(label.incident_id), False))
        kind = str(label.kind)
        tally = counts.by_kind.setdefault(kind, [0, 0, 0, 0])
        tally[0] += 1
        tally[1] += found
        tally[2] += visible
        tally[3] += found and visible
        counts.incidents += 1
        counts.detected += found
        counts.detectable += visible
        counts.detectable_detected += found and visible
        if hits:
            counts.delays.append((min(hits) - start).days)
            counts.found_in_window[kind] = counts.found_in_window.get(kind, 0) + 1
        if not found:
            counts.missed.append(f"{label.incident_id} {kind} {label.entity_type} "
                                 f"x{label.magnitude}{'' if visible else ' (below the noise)'}")
