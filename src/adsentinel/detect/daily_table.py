"""Entities' daily rows as detection reads them: one row per calendar day, counts as floats.

:func:`prepare_daily_frame` prepares one entity's rows (any order, days missing, a ``day`` or
``date`` column) as the detector's tests read them: one row per calendar day from its first to
its last, missing days as zeros. A chunk of an account holds thousands of entities, and per-entity
pandas calls would cost more than the detection: :class:`DailyTable` prepares them all in one
vectorised pass and keeps them laid end to end in one table, which the vectorised walk reads as
it is (:mod:`~adsentinel.detect.account_walk`), and hands out each entity's own frame
(:meth:`DailyTable.frames`).

Pure: frames in, frames out.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from adsentinel.detect.features import COUNT_COLUMNS

Key = Hashable
_EPOCH = date(1970, 1, 1)


def prepare_daily_frame(df: pd.DataFrame) -> pd.DataFrame:
    """One row per calendar day from the first to the last, counts as floats, gaps as zeros.

    Accepts ``date`` or ``day`` as the date column. Returns columns ``date`` (Timestamp) and
    :data:`~adsentinel.detect.features.COUNT_COLUMNS`.
    """
    if df.empty:
        return pd.DataFrame(columns=["date", *COUNT_COLUMNS])
    if _marked(df):
        return df
    if _is_prepared(df):  # prepared elsewhere: marked, later calls skip the checks
        return _mark_prepared(df)
    date_column = "date" if "date" in df.columns else "day"
    missing = [c for c in COUNT_COLUMNS if c not in df.columns]
    if date_column not in df.columns or missing:
        raise ValueError(
            f"df must have a 'date' column and {list(COUNT_COLUMNS)}; missing "
            f"{missing or [date_column]}"
        )
    frame = df[[date_column, *COUNT_COLUMNS]].rename(columns={date_column: "date"})
    frame["date"] = pd.to_datetime(frame["date"]).dt.normalize()
    frame = frame.groupby("date", as_index=True)[list(COUNT_COLUMNS)].sum().astype(float)
    full = pd.date_range(frame.index.min(), frame.index.max(), freq="D")
    frame = frame.reindex(full, fill_value=0.0)
    frame.index.name = "date"
    frame = frame.reset_index()
    return _mark_prepared(frame)


def prepare_daily_frames(df: pd.DataFrame, key: str = "entity_id") -> dict[Key, pd.DataFrame]:
    """:func:`prepare_daily_frame` of every ``key`` group of ``df`` at once, by ``key`` value
    (:meth:`DailyTable.of_rows` then :meth:`DailyTable.frames`)."""
    return DailyTable.of_rows(df, key).frames()


@dataclass(frozen=True)
class DailyTable:
    """Many entities' prepared daily rows laid end to end in one frame (``daily``: ``date`` and
    :data:`~adsentinel.detect.features.COUNT_COLUMNS`), each entity one row per calendar day:
    ``first_row[key]`` is where it starts, ``first_day[key]`` its first day (days since
    1970-01-01), ``length[key]`` its rows."""

    daily: pd.DataFrame
    first_row: Mapping[Key, int]
    first_day: Mapping[Key, int]
    length: Mapping[Key, int]

    @classmethod
    def of_rows(cls, df: pd.DataFrame, key: str = "entity_id") -> DailyTable:
        """Every ``key`` group of ``df`` (rows in any order, a ``date`` or ``day`` column),
        prepared in one vectorised pass (grouping, calendar filling); keys as ``int``."""
        if df.empty:
            return cls._of_arrays([], np.empty(0, dtype="datetime64[ns]"), np.empty((0, 5)), [])
        date_column = "date" if "date" in df.columns else "day"
        frame = df[[key, date_column, *COUNT_COLUMNS]].rename(columns={date_column: "date"})
        frame["date"] = pd.to_datetime(frame["date"]).dt.normalize()
        sums = frame.groupby([key, "date"], sort=True)[list(COUNT_COLUMNS)].sum().astype(float)
        keys = sums.index.get_level_values(0).to_numpy()
        stamps = sums.index.get_level_values(1)
        days = stamps.to_numpy().astype("datetime64[D]")
        starts_at = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        ends_at = np.r_[starts_at[1:], keys.size] - 1
        first, last = days[starts_at], days[ends_at]
        spans = (last - first).astype(int) + 1
        offsets = np.arange(spans.sum()) - np.repeat(np.cumsum(spans) - spans, spans)
        calendar = np.repeat(first, spans) + offsets.astype("timedelta64[D]")
        full = pd.MultiIndex.from_arrays(
            [np.repeat(keys[starts_at], spans), calendar.astype(stamps.dtype)],
            names=[key, "date"],
        )
        values = sums.reindex(full, fill_value=0.0).to_numpy()
        return cls._of_arrays([int(k) for k in keys[starts_at]],
                              full.get_level_values(1).to_numpy(), values, spans.tolist())

    @classmethod
    def of_frames(cls, frames: Mapping[Key, pd.DataFrame],
                  keys: Iterable[Key] | None = None) -> DailyTable:
        """The prepared ``frames`` (of ``keys``, default all) laid end to end."""
        wanted = frames.keys() if keys is None else set(keys)
        laid = [key for key in frames if key in wanted and not frames[key].empty]
        if not laid:
            return cls._of_arrays([], np.empty(0, dtype="datetime64[ns]"), np.empty((0, 5)), [])
        return cls._of_arrays(
            laid, np.concatenate([frames[key]["date"].to_numpy() for key in laid]),
            np.concatenate([frames[key][list(COUNT_COLUMNS)].to_numpy(dtype=float)
                            for key in laid]),
            [len(frames[key]) for key in laid])

    @classmethod
    def _of_arrays(cls, keys: list[Key], dates: np.ndarray, values: np.ndarray,
                   lengths: list[int]) -> DailyTable:
        firsts = np.cumsum([0, *lengths])[:-1].tolist()
        day_numbers = dates.astype("datetime64[D]").astype(np.int64)
        daily = pd.DataFrame({"date": dates, **{column: np.ascontiguousarray(values[:, index])
                                                for index, column in enumerate(COUNT_COLUMNS)}})
        return cls(daily, dict(zip(keys, firsts, strict=True)),
                   {key: int(day_numbers[row]) for key, row in zip(keys, firsts, strict=True)},
                   dict(zip(keys, lengths, strict=True)))

    def row_of(self, key: Key, day: date) -> int | None:
        """The row of ``key``'s ``day`` (``None``: the entity has no row that day)."""
        if key not in self.first_row:
            return None
        offset = (day - _EPOCH).days - self.first_day[key]
        return self.first_row[key] + offset if 0 <= offset < self.length[key] else None

    def days_of(self, key: Key) -> list[date]:
        """Every calendar day of ``key``'s rows, in order."""
        first = _EPOCH + timedelta(days=self.first_day[key])
        return [first + timedelta(days=offset) for offset in range(self.length[key])]

    def frame_of(self, key: Key) -> pd.DataFrame:
        """``key``'s own frame, as :func:`prepare_daily_frame` returns it (marked, so that the
        detector does not check it again): a slice of :attr:`daily` renumbered from 0, sharing
        its memory (pandas copies on write: changing one changes neither), several times
        cheaper than a frame built from arrays."""
        first = self.first_row[key]
        return _mark_prepared(
            self.daily.iloc[first:first + self.length[key]].reset_index(drop=True))

    def frames(self) -> dict[Key, pd.DataFrame]:
        """Every entity's own frame (:meth:`frame_of`)."""
        return {key: self.frame_of(key) for key in self.first_row}

    def lazy_frames(self, keys: Iterable[Key]) -> LazyFrames:
        """The frames of ``keys`` (those in the table), each made when first read: most
        entity-days of an hourly cycle are decided from the walk's tests without their
        entity's frame."""
        wanted = set(keys)
        return LazyFrames(self, [key for key in self.first_row if key in wanted])  # table order


class LazyFrames(Mapping[Key, pd.DataFrame]):
    """A :class:`DailyTable`'s frames of some of its entities, each made on first access and
    kept (:meth:`DailyTable.lazy_frames`)."""

    def __init__(self, table: DailyTable, keys: list[Key]) -> None:
        self._table = table
        self._keys = dict.fromkeys(keys)
        self._made: dict[Key, pd.DataFrame] = {}

    def __getitem__(self, key: Key) -> pd.DataFrame:
        if key not in self._keys:
            raise KeyError(key)
        if key not in self._made:
            self._made[key] = self._table.frame_of(key)
        return self._made[key]

    def __iter__(self) -> Iterator[Key]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys


#: The frames known to be :func:`prepare_daily_frame` results, by ``id`` (an entry goes with its
#: frame). Not a flag in ``DataFrame.attrs``: pandas deep-copies a frame's attrs into every
#: column and slice taken from it, which cost a walk a tenth of its time.
_PREPARED_FRAMES: weakref.WeakValueDictionary[int, pd.DataFrame] = weakref.WeakValueDictionary()


def _mark_prepared(frame: pd.DataFrame) -> pd.DataFrame:
    _PREPARED_FRAMES[id(frame)] = frame
    return frame


def _marked(df: pd.DataFrame) -> bool:
    return _PREPARED_FRAMES.get(id(df)) is df


def _is_prepared(df: pd.DataFrame) -> bool:
    """True when ``df`` is already a :func:`prepare_daily_frame` result (walk-forward fast path)."""
    if _marked(df):
        return True
    if list(df.columns) != ["date", *COUNT_COLUMNS]:
        return False
    if not pd.api.types.is_datetime64_any_dtype(df["date"]):
        return False
    if not all(pd.api.types.is_float_dtype(df[c]) for c in COUNT_COLUMNS):
        return False
    steps = np.diff(df["date"].to_numpy()).astype("timedelta64[D]").astype(int)
    return bool((steps == 1).all())


__all__ = ["DailyTable", "LazyFrames", "prepare_daily_frame", "prepare_daily_frames"]
