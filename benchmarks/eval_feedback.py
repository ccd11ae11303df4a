"""Does feedback cut repeat false alarms without hiding new incidents? A walk-forward check on
the real detection code (statistical detectors, SQLite, the production ``detect_account``).

The scenario (deterministic for a seed): one account, ``campaigns`` campaigns of one ad set and
``ads_per_campaign`` ads each, ``days`` days of Poisson-noisy delivery. Some ads have a benign
*quirk*: on random days (every 5-9 days) their CPM is ~1.7x (the same spend buys fewer
impressions), which the detectors rightly find unusual and the advertiser considers normal.
Real incidents of two days are injected in the second half: on a quirky ad a CPM rise of 4x (the
same pattern, clearly bigger), on another quirky ad and on a plain one leads falling to zero, on
a plain ad CTR collapsing to a quarter.

1. **First pass** (the first half of the judged days): detect day by day, each day judged with
   only the days before it. The user marks every alarm that is not a real incident as
   ``false_positive`` (as with ``adsentinel anomalies mark ID false_positive``).
2. **Second pass** (the later days), twice from the same state: without feedback (marks not
   given) and with it. An alarm is an anomaly of severity medium or worse (what a default
   channel is sent).

Each day is imported, detected and planned in turn (``plan_alerts`` at noon the next day, on
a default channel whose outbox is counted, never delivered), as production would.

Printed for the second pass: false alarms (stored anomalies), *repeat* false alarms (same
entity, metric and direction as one dismissed in the first pass), recall of the incidents (an
incident is caught when its ad, or its ad set or campaign, alarms on one of its days; "on the
ad" when the ad itself does), and what the channel was actually sent: alerts opened for
something that is not an incident, and incidents alerted.

    python benchmarks/eval_feedback.py [--seed N] [--campaigns C] [--ads-per-campaign A]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import perf_counter

import numpy as np
from sqlalchemy import select, update

from adsentinel.alerts.config import add_channel
from adsentinel.alerts.incidents import severity_rank
from adsentinel.alerts.service import plan_alerts
from adsentinel.config import load_settings
from adsentinel.db.engine import make_session_factory, open_database, session_scope
from adsentinel.db.models import AlertOutbox, Anomaly, Entity
from adsentinel.detection.account import detect_account
from adsentinel.ingest.csv_import import import_insights_csv

ALARM = "medium"
QUIRK_CPM = 1.7
_HEADER = "date,account_id,campaign_id,adset_id,ad_id,spend,impressions,clicks,leads,reach"


@dataclass(frozen=True)
class Incident:
    ad: str
    kind: str
    first: date
    last: date


@dataclass
class Scenario:
    folder: Path
    lines: dict[date, list[str]]
    first_day: date
    days: int
    quirk_days: dict[str, set[date]]
    incidents: list[Incident]
    judged_from: int = 40
    split_at: int = 0

    def day(self, index: int) -> date:
        return self.first_day + timedelta(days=index)


def build_scenario(folder: Path, *, seed: int = 7, campaigns: int = 3, ads_per_campaign: int = 4,
                   days: int = 90, first_day: date = date(2026, 6, 1)) -> Scenario:
    """Write the scenario's CSV (see the module docstring) and say what is in it."""
    rng = np.random.default_rng(seed)
    ads = [(f"c{c}", f"s{c}", f"a{c}_{k}") for c in range(campaigns)
           for k in range(ads_per_campaign)]
    quirky = [ad for _, _, ad in ads if ad.endswith("_0")]
    judged_from = 40
    split = judged_from + (days - judged_from) // 2
    quirk_days: dict[str, set[date]] = {}
    for ad in quirky:
        index, chosen = int(rng.integers(3, 8)), set()
        while index < days:
            chosen.add(first_day + timedelta(days=index))
            index += int(rng.integers(5, 10))
        quirk_days[ad] = chosen
    # incidents of two days each, spread over the second pass (after a few quiet days)
    later = [first_day + timedelta(days=i) for i in range(split + 2, days - 1)]
    plain = [ad for _, _, ad in ads if ad not in quirky]
    planned = [(quirky[0], "cpm_4x"), (plain[0], "zero_leads"), (quirky[-1], "zero_leads"),
               (plain[-1], "ctr_collapse")]
    incidents = []
    for number, (ad, kind) in enumerate(planned):
        start = later[number * (len(later) - 2) // max(len(planned) - 1, 1)]
        incidents.append(Incident(ad, kind, start, start + timedelta(days=1)))
    lines: dict[date, list[str]] = {}
    for index in range(days):
        day = first_day + timedelta(days=index)
        for campaign, adset, ad in ads:
            spend = 100.0 * rng.uniform(0.95, 1.05)
            cpm, ctr, conversion = 10.0, 0.015, 0.1
            if day in quirk_days.get(ad, ()):
                cpm *= QUIRK_CPM
            for incident in incidents:
                if incident.ad == ad and incident.first <= day <= incident.last:
                    if incident.kind == "cpm_4x":
                        cpm *= 4.0
                    elif incident.kind == "zero_leads":
                        conversion = 0.0
                    else:
                        ctr *= 0.25
            impressions = int(rng.poisson(1000 * spend / cpm))
            clicks = int(rng.binomial(impressions, ctr))
            leads = int(rng.binomial(clicks, conversion))
            lines.setdefault(day, []).append(
                f"{day},act_eval,{campaign},{adset},{ad},{spend:.2f},{impressions},{clicks},"
                f"{leads},{int(impressions * 0.8)}")
    return Scenario(folder, lines, first_day, days, quirk_days, incidents, judged_from, split)


def import_days(scenario: Scenario, engine, first: int, last: int) -> None:
    """Import the days ``[first, last)`` of the scenario, as a daily sync would."""
    path = scenario.folder / f"days-{first}-{last}.csv"
    rows = [line for index in range(first, last) for line in scenario.lines[scenario.day(index)]]
    path.write_text(_HEADER + "\n" + "\n".join(rows) + "\n")
    import_insights_csv(path, engine=engine)
    path.unlink()


@dataclass
class PassResult:
    false_alarms: int = 0
    repeat_false_alarms: int = 0
    caught: set[str] = field(default_factory=set)
    caught_on_ad: set[str] = field(default_factory=set)
    false_alerts: int = 0
    alerted: set[str] = field(default_factory=set)


def _walk(settings, engine, factory, account_id: int, scenario: Scenario, first: int,
          last: int) -> None:
    """Day by day: the day's numbers arrive, detection judges it, alerts are planned (at noon
    of the next day, when a complete day is first judged)."""
    for index in range(first, last):
        import_days(scenario, engine, index, index + 1)
        detect_account(session_factory=factory, settings=settings, account_id=account_id,
                       analysis_date=scenario.day(index), recheck_days=1)
        noon = datetime.combine(scenario.day(index + 1), time(12), tzinfo=UTC)
        plan_alerts(session_factory=factory, settings=settings, account_id=account_id, now=noon)


def _lineage(factory, account_id: int) -> dict[int, tuple[str, str | None, str | None]]:
    """entity id -> (platform id, parent's platform id, grandparent's platform id)."""
    with factory() as session:
        rows = {e.id: e for e in session.scalars(select(Entity).where(
            Entity.account_id == account_id))}
    lineage = {}
    for entity_id, entity in rows.items():
        parent = rows.get(entity.parent_id) if entity.parent_id else None
        grand = rows.get(parent.parent_id) if parent is not None and parent.parent_id else None
        lineage[entity_id] = (entity.platform_id, parent.platform_id if parent else None,
                              grand.platform_id if grand else None)
    return lineage


def _is_incident(scenario: Scenario, lineage, entity_id: int, day: date) -> Incident | None:
    """The incident an alarm of this entity and day belongs to (the ad, or its parents)."""
    names = lineage[entity_id]
    for incident in scenario.incidents:
        campaign = "c" + incident.ad[1:].split("_")[0]
        adset = "s" + campaign[1:]
        if incident.first <= day <= incident.last and names[0] in (incident.ad, adset, campaign):
            return incident
    return None


def _opened_alerts(factory, since: date) -> list[tuple[int, date]]:
    """(entity, day that opened it) of the incidents the channel was told about since
    ``since``."""
    with factory() as session:
        payloads = session.scalars(select(AlertOutbox.payload).where(
            AlertOutbox.kind == "opened")).all()
    return [(p["incident"]["entity_id"], date.fromisoformat(p["incident"]["latest_day"]))
            for p in payloads if date.fromisoformat(p["incident"]["latest_day"]) >= since]


def _alarms(factory, account_id: int, first: date, last: date) -> list[Anomaly]:
    with factory() as session:
        return [a for a in session.scalars(select(Anomaly).where(
            Anomaly.account_id == account_id, Anomaly.day.between(first, last)))
            if a.status != "retracted" and severity_rank(a.severity) >= severity_rank(ALARM)]


def evaluate_feedback(folder: Path, *, seed: int = 7, campaigns: int = 3,
                      ads_per_campaign: int = 4, days: int = 90) -> dict[str, object]:
    """Run the two passes (see the module docstring) under ``folder``; returns the figures."""
    scenario = build_scenario(folder, seed=seed, campaigns=campaigns,
                              ads_per_campaign=ads_per_campaign, days=days)
    first_settings = load_settings(data_dir=folder / "first", use_isolation_forest=False)
    engine = open_database(first_settings)
    factory = make_session_factory(engine)
    import_days(scenario, engine, 0, scenario.judged_from)
    account_id = 1
    # a default channel (severity medium and up); nothing is delivered, the outbox is counted
    add_channel(session_factory=factory, account_id=account_id, kind="webhook",
                target="env:UNUSED_HOOK_URL", secret_ref="env:UNUSED")  # never called
    started = perf_counter()
    _walk(first_settings, engine, factory, account_id, scenario, scenario.judged_from,
          scenario.split_at)
    lineage = _lineage(factory, account_id)
    first_alarms = _alarms(factory, account_id, scenario.day(scenario.judged_from),
                           scenario.day(scenario.split_at - 1))
    dismissed_ids = [a.id for a in first_alarms
                     if _is_incident(scenario, lineage, a.entity_id, a.day) is None]
    dismissed_keys = {(a.entity_id, a.metric, a.direction) for a in first_alarms
                      if a.id in dismissed_ids}
    engine.dispose()
    results: dict[str, PassResult] = {}
    for mode in ("without", "with"):
        copy = folder / mode
        shutil.copytree(folder / "first", copy)
        settings = load_settings(data_dir=copy, use_isolation_forest=False)
        engine = open_database(settings)
        factory = make_session_factory(engine)
        if mode == "with":
            with session_scope(factory) as session:
                session.execute(update(Anomaly).where(Anomaly.id.in_(dismissed_ids))
                                .values(status="false_positive", status_by="evaluation"))
        _walk(settings, engine, factory, account_id, scenario, scenario.split_at, scenario.days)
        result = PassResult()
        for entity_id, day in _opened_alerts(factory, scenario.day(scenario.split_at)):
            incident = _is_incident(scenario, lineage, entity_id, day)
            if incident is None:
                result.false_alerts += 1
            else:
                result.alerted.add(f"{incident.ad}:{incident.kind}")
        for alarm in _alarms(factory, account_id, scenario.day(scenario.split_at),
                             scenario.day(scenario.days - 1)):
            incident = _is_incident(scenario, lineage, alarm.entity_id, alarm.day)
            if incident is not None:
                result.caught.add(f"{incident.ad}:{incident.kind}")
                if lineage[alarm.entity_id][0] == incident.ad:
                    result.caught_on_ad.add(f"{incident.ad}:{incident.kind}")
                continue
            result.false_alarms += 1
            result.repeat_false_alarms += (alarm.entity_id, alarm.metric,
                                           alarm.direction) in dismissed_keys
        results[mode] = result
        engine.dispose()
    incidents = [f"{i.ad}:{i.kind}" for i in scenario.incidents]
    return {
        "entities": len(lineage),
        "judged_days": scenario.days - scenario.judged_from,
        "first_pass_alarms": len(first_alarms),
        "dismissed": len(dismissed_ids),
        "incidents": incidents,
        "without": results["without"],
        "with": results["with"],
        "seconds": perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--campaigns", type=int, default=3)
    parser.add_argument("--ads-per-campaign", type=int, default=4)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = evaluate_feedback(Path(tmp), seed=args.seed, campaigns=args.campaigns,
                                    ads_per_campaign=args.ads_per_campaign, days=args.days)
    without, with_ = figures["without"], figures["with"]
    total = len(figures["incidents"])
    print(f"{figures['entities']} entities, {figures['judged_days']} days judged; first pass: "
          f"{figures['first_pass_alarms']} alarms, {figures['dismissed']} marked false_positive")
    print(f"{'second pass':<18}{'false alarms':>13}{'repeats':>9}{'incidents caught':>18}"
          f"{'on the ad':>11}{'false alerts':>14}{'incidents alerted':>19}")
    for name, result in (("without feedback", without), ("with feedback", with_)):
        print(f"{name:<18}{result.false_alarms:>13}{result.repeat_false_alarms:>9}"
              f"{len(result.caught):>16}/{total}{len(result.caught_on_ad):>9}/{total}"
              f"{result.false_alerts:>14}{len(result.alerted):>17}/{total}")
    missed = sorted(set(figures["incidents"]) - with_.caught)
    print(f"missed with feedback: {', '.join(missed) or 'none'}; {figures['seconds']:.1f} s")
    print(f"BENCH feedback_repeat_fa_without={without.repeat_false_alarms} "
          f"feedback_repeat_fa_with={with_.repeat_false_alarms} "
          f"recall_without={len(without.caught)}/{total} recall_with={len(with_.caught)}/{total} "
          f"false_alerts_without={without.false_alerts} false_alerts_with={with_.false_alerts}")


if __name__ == "__main__":
    main()
