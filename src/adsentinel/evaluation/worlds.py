"""The labelled worlds the detector is judged on, and the run that judges it on all of them.

Two independent generators, written from different assumptions:

* ``lab``: :mod:`adsentinel.evaluation.lab_world`, the world the detector was first built in;
* ``field``: :mod:`adsentinel.evaluation.field_world`, written separately from a list of
  real-world phenomena, its assumptions drawn per seed from wide ranges.

Each world is judged over several seeds, on the last :data:`JUDGED_DAYS` days of each dataset,
with the same detector and the same settings: nothing depends on which generator made the data.
Decisions are taken on the worse of the two worlds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

import pandas as pd

from adsentinel.evaluation.oracle import oracle_table
from adsentinel.evaluation.scoring import AlarmCounts, Hierarchy, score_run

WORLDS = ("lab", "field")
DEFAULT_SEEDS = (1, 2, 3, 4)
JUDGED_DAYS = 60
#: The engines compared: the detector with its forest, without it (the ablation), and a naive
#: yardstick (mean/std z-score and IQR per metric, a forest cutting 10 % of days).
ENGINES = ("adsentinel", "adsentinel, no forest", "naive")


@dataclass
class WorldScores:
    """Pooled counts per (world, engine) and the seconds each world took."""

    counts: dict[tuple[str, str], AlarmCounts] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    seeds: tuple[int, ...] = ()

    def table(self) -> pd.DataFrame:
        """One column per (world, engine), one row per measure."""
        return pd.DataFrame({f"{world}: {engine}": counts.summary()
                             for (world, engine), counts in self.counts.items()})


SIZES = ("evaluation", "demo")


def world_dataset(world: str, seed: int, size: str = "evaluation"):
    """The labelled dataset of ``world`` for ``seed`` (insights, labels, events); ``demo`` is a
    small one for a quick look, ``evaluation`` the one the README's figures come from."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose from {', '.join(SIZES)}")
    if world == "lab":
        from adsentinel.evaluation.lab_world import generate_dataset, preset_config

        return generate_dataset(preset_config(size, seed=seed))
    if world == "field":
        from adsentinel.evaluation.field_world import field_world_config, generate_field_world

        return generate_field_world(field_world_config(seed, size=size))
    raise ValueError(f"unknown world {world!r}; choose from {', '.join(WORLDS)}")


#: ``(insights, engine name) -> anomalies``: how an engine is walked over a dataset.
WalkEngine = Callable[[pd.DataFrame, str], pd.DataFrame]


def evaluate_worlds(
    walk: WalkEngine,
    *,
    worlds: Iterable[str] = WORLDS,
    seeds: Iterable[int] = DEFAULT_SEEDS,
    engines: Iterable[str] = ENGINES,
    min_severity: str = "medium",
    size: str = "evaluation",
    progress: Callable[[str], None] | None = None,
) -> WorldScores:
    """Walk every engine over every world and seed, and pool the scored counts.

    ``walk(insights, engine)`` returns the engine's anomalies over the whole dataset (each day
    judged with the days before it only); the last :data:`JUDGED_DAYS` days are scored.
    """
    scores = WorldScores(seeds=tuple(seeds))
    engines = tuple(engines)
    for world in worlds:
        started = time.perf_counter()
        for seed in scores.seeds:
            dataset = world_dataset(world, seed, size)
            insights = dataset.insights
            dates = pd.to_datetime(insights["date"]).dt.date
            last_day = dates.max()
            first_day = last_day - timedelta(days=JUDGED_DAYS - 1)
            hierarchy = Hierarchy.from_insights(insights)
            verdicts = oracle_table(dataset.labels, _entity_frames(insights))
            detectable = dict(zip(verdicts["incident_id"], verdicts["detectable"], strict=True))
            for engine in engines:
                if progress:
                    progress(f"{world} seed {seed}: {engine}")
                anomalies = walk(insights, engine)
                counts = score_run(anomalies, dataset.labels, hierarchy, first_day=first_day,
                                   last_day=last_day, min_severity=min_severity,
                                   detectable=detectable)
                key = (world, engine)
                scores.counts[key] = scores.counts[key] + counts if key in scores.counts else counts
        scores.seconds[world] = time.perf_counter() - started
    return scores


def _entity_frames(insights: pd.DataFrame) -> dict[tuple[str, str, str], pd.DataFrame]:
    from adsentinel.evaluation.walk import entity_frames

    return entity_frames(insights)
