"""Rules between levels: a parent's anomaly that its children already explain is not its own.

Ad sets and campaigns are sums of their ads. When one ad of forty breaks, its campaign's leads
fall too; when a new ad launches with a big budget, its campaign's spend doubles; when an ad is
paused, its ad set delivers less. None of these is the parent's incident: raised on the parent,
they ask the owners of every ad below it to look. So, for each parent anomaly:

1. its move is measured in counts (``excess``: leads, clicks, impressions or spend above or
   below expected);
2. the ads under it that *explain* it are collected: ads with an alarm (medium or worse) of the
   same metric and direction (their own excess), and ads that are not judged on that day because they are
   starting (too little history) or stopped delivering (their move against their own recent
   level);
3. when those ads account for at least :data:`EXPLAINED_SHARE` of the parent's move, what is
   left of it would no longer pass the threshold (``|z| x (1 - share) < z_threshold``: the rest
   of the parent's ads did not move), and the ads with alarms among them are a minority of the
   parent's delivering ads, the parent's anomaly is at most *low*, with a note naming how many
   ads explain it. When most of its ads move together, or the rest moves too, the parent carries
   the incident. Ads starting or stopping are the parent's life cycle, not a shared incident:
   however many they are, they do not make the parent carry it.

A parent's *rate* (CPM, CTR, CPC, CPL, conversion rate) is also a mix: its ads' rates weighted by
the exposure each ad got. When a cheap ad stops, or the platform moves budget towards a dear one,
or a new ad is learning, the parent's CPM moves while no ad's CPM does. :func:`mix_explains`
judges the parent's count against what its ads' own baseline rates expect for the exposure each
got (a new ad, with no baseline yet, expects what it did): when that mix expects what happened,
the parent's move is its mix changing, at most *low*.

Pure: anomalies and numbers in, anomalies out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from adsentinel.detect.anomaly_detector import DetectedAnomaly
from adsentinel.detect.calibration import LOW_CAP, SeverityLevel, severity_for_score
from adsentinel.detect.statistical import FREQUENCY_DEFINITION, RATE_DEFINITIONS, nb_signed_z

EXPLAINED_SHARE = 0.5
_VOLUME_METRICS = ("spend", "impressions", "leads")


def count_column(metric: str) -> str | None:
    """The count a metric's move is measured in (``leads`` for CPL, ``spend`` for spend)."""
    if metric in _VOLUME_METRICS:
        return metric
    definition = (RATE_DEFINITIONS | FREQUENCY_DEFINITION).get(metric)
    return None if definition is None else definition[0]


def count_excess(metric: str, actual: float, expected: float,
                 drivers: Mapping[str, object]) -> float | None:
    """The move of one anomaly in counts: observed minus expected (negative = fewer)."""
    if metric in _VOLUME_METRICS:
        return float(actual - expected)
    column = count_column(metric)
    if column is None:
        return None
    observed = drivers.get(f"observed_{column}")
    predicted = drivers.get(f"expected_{column}")
    if observed is None or predicted is None:
        return None
    return float(observed) - float(predicted)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ChildMove:
    """One ad's share of its parent's move on one metric: ``excess`` in the metric's counts."""

    entity_id: str
    excess: float
    lifecycle: bool = False  # an ad starting or stopping, not an ad with its own alarm


def parent_is_explained(parent_excess: float, parent_z: float, explaining: Sequence[ChildMove],
                        delivering_children: int, z_threshold: float) -> bool:
    """True when ``explaining`` ads carry at least half of the parent's move, the remainder
    would not pass ``z_threshold`` and those with alarms of their own are a minority of its
    ``delivering_children``."""
    if not np.isfinite(parent_excess) or parent_excess == 0 or not explaining:
        return False
    same_way = [c for c in explaining if np.sign(c.excess) == np.sign(parent_excess)]
    share = min(sum(c.excess for c in same_way) / parent_excess, 1.0)
    alarmed = sum(not c.lifecycle for c in same_way)
    return (share >= EXPLAINED_SHARE and abs(parent_z) * (1.0 - share) < z_threshold
            and 2 * alarmed < max(delivering_children, 2))


def demote_explained(anomaly: DetectedAnomaly, explaining: Sequence[ChildMove]) -> DetectedAnomaly:
    """``anomaly`` capped at *low*, its message saying which ads explain it."""
    score = min(anomaly.score, LOW_CAP)
    ads = len(explaining)
    note = f"; explained by {ads} of its ad{'s' if ads != 1 else ''}, judged there"
    return replace(anomaly, score=round(float(score), 2), severity=_capped_severity(anomaly),
                   message=anomaly.message + note,
                   drivers={**anomaly.drivers, "explained_by_ads": ads})



def _capped_severity(anomaly: DetectedAnomaly) -> SeverityLevel:
    """The severity of ``anomaly``'s score capped at *low*: *low*, as only anomalies of medium or
    worse are demoted (one below the reporting floor would keep its own)."""
    return severity_for_score(min(anomaly.score, LOW_CAP)) or anomaly.severity

@dataclass(frozen=True)
class ChildRate:
    """One ad's part of its parent's rate over the parent's window: the count it delivered
    (``observed``: leads, clicks or impressions) and the count its own baseline rate expects for
    the exposure it got (``expected``; equal to ``observed`` for an ad with no baseline yet)."""

    observed: float
    expected: float


def mix_explains(children: Sequence[ChildRate], parent_excess: float, overdispersion: float,
                 z_threshold: float) -> bool:
    """True when the parent's rate move is its mix of ads changing: the counts its ads delivered
    are what their own baseline rates expect for their exposure (the negative-binomial tail with
    the parent's ``overdispersion`` does not pass ``z_threshold`` in the direction of the parent's
    move, ``parent_excess`` in counts)."""
    observed = float(sum(c.observed for c in children))
    expected = float(sum(c.expected for c in children))
    if expected <= 0 or not np.isfinite(parent_excess) or parent_excess == 0:
        return False
    z = nb_signed_z(observed, expected, overdispersion)
    return np.sign(z) != np.sign(parent_excess) or abs(z) < z_threshold


def demote_mix(anomaly: DetectedAnomaly) -> DetectedAnomaly:
    """``anomaly`` capped at *low*: its ads' own rates are as usual, its mix of ads changed."""
    score = min(anomaly.score, LOW_CAP)
    note = ("; each of its ads is as usual: the mix of its ads changed (ads starting or stopping,"
            " budget moving between them)")
    return replace(anomaly, score=round(float(score), 2), severity=_capped_severity(anomaly),
                   message=anomaly.message + note, drivers={**anomaly.drivers, "mix_changed": True})
