"""Anomalies out, for dbt, Looker or Metabase: a table in any database SQLAlchemy reaches, or a
Parquet file. Both stream: the anomalies are read and written in chunks of
:data:`CHUNK_ROWS`, so memory does not grow with their number.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import aliased

from adsentinel.db.external import external_engine
from adsentinel.db.models import AdAccount, Anomaly, Entity
from adsentinel.errors import ConfigError, StorageError

CHUNK_ROWS = 50_000
MODES = ("replace", "append")
#: the exported columns, in order (one row per anomaly)
EXPORT_COLUMNS = ["anomaly_id", "account", "account_platform_id", "entity_type", "entity_id",
                  "entity_name", "parent_entity_id", "day", "metric", "detectors", "actual",
                  "expected", "lower", "upper", "direction", "score", "severity", "message",
                  "status", "is_partial_day", "incident_id", "created_at", "updated_at"]


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote."""

    rows: int
    target: str  # the table (URL with the password hidden) or the file


def anomaly_chunks(engine: Engine, *, account_ids: list[int] | None = None,
                   since: date | None = None, chunk_rows: int = CHUNK_ROWS,
                   ) -> Iterator[pd.DataFrame]:
    """The anomalies (``account_ids`` and days from ``since`` when given), in id order, as
    DataFrames of at most ``chunk_rows`` rows with :data:`EXPORT_COLUMNS`."""
    parent = aliased(Entity)
    query = (select(Anomaly.id.label("anomaly_id"), AdAccount.name.label("account"),
                    AdAccount.platform_account_id.label("account_platform_id"),
                    Entity.level.label("entity_type"), Entity.platform_id.label("entity_id"),
                    Entity.name.label("entity_name"), parent.platform_id.label("parent_entity_id"),
                    Anomaly.day, Anomaly.metric, Anomaly.detectors, Anomaly.actual,
                    Anomaly.expected, Anomaly.lower, Anomaly.upper, Anomaly.direction,
                    Anomaly.score, Anomaly.severity, Anomaly.message, Anomaly.status,
                    Anomaly.is_partial_day, Anomaly.incident_id, Anomaly.created_at,
                    Anomaly.updated_at)
             .join(AdAccount, AdAccount.id == Anomaly.account_id)
             .join(Entity, Entity.id == Anomaly.entity_id)
             .outerjoin(parent, parent.id == Entity.parent_id)
             .order_by(Anomaly.id))
    if account_ids is not None:
        query = query.where(Anomaly.account_id.in_(account_ids))
    if since is not None:
        query = query.where(Anomaly.day >= since)
    with engine.connect().execution_options(stream_results=True) as conn:
        result = conn.execute(query)
        while rows := result.fetchmany(chunk_rows):
            yield _typed(pd.DataFrame(rows, columns=EXPORT_COLUMNS))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The same column types in every chunk (a chunk without any bound is still float)."""
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    for column in ("created_at", "updated_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    for column in ("actual", "expected", "lower", "upper", "score"):
        frame[column] = frame[column].astype(float)
    for column in ("anomaly_id", "incident_id"):
        frame[column] = frame[column].astype("Int64")
    frame["is_partial_day"] = frame["is_partial_day"].astype(bool)
    return frame


def export_to_sql(chunks: Iterator[pd.DataFrame], *, url: str, table: str,
                  mode: str = "replace") -> ExportSummary:
    """Write the anomalies to ``table`` of the database at ``url`` (any SQLAlchemy URL with its
    driver installed). ``replace`` drops and recreates the table first; ``append`` adds rows."""
    if mode not in MODES:
        raise ConfigError(f"--mode must be replace or append, got {mode!r}")
    target = _engine_for(url)
    shown = f"{target.url.render_as_string(hide_password=True)} table {table}"
    rows = 0
    try:
        with target.begin() as conn:  # one transaction: readers never see half an export
            first = True
            for chunk in chunks:
                chunk.to_sql(table, conn, if_exists=mode if first else "append", index=False)
                rows += len(chunk)
                first = False
            if first and mode == "replace":  # no anomaly: still an (empty) table to read
                _typed(pd.DataFrame(columns=EXPORT_COLUMNS)).to_sql(
                    table, conn, if_exists="replace", index=False)
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot write the anomalies to {shown}: "
                           f"{str(getattr(exc, 'orig', exc) or exc).strip().splitlines()[0]}",
                           hint="check the URL, the table name and the user's rights") from None
    finally:
        target.dispose()
    return ExportSummary(rows, shown)


def export_to_parquet(chunks: Iterator[pd.DataFrame], *, path: Path) -> ExportSummary:
    """Write the anomalies to the Parquet file ``path`` (pyarrow: ``pip install
    'adsentinel[parquet]'``), written to a temporary name then renamed."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("Parquet export needs pyarrow, which is not installed",
                          hint="pip install 'adsentinel[parquet]' (about 170 MB)") from None
    partial = path.with_name(path.name + ".partial")
    rows, writer = 0, None
    try:
        for chunk in chunks:
            batch = pa.Table.from_pandas(chunk, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(partial, batch.schema)
            writer.write_table(batch.cast(writer.schema))
            rows += len(chunk)
        if writer is None:
            writer = pq.ParquetWriter(partial, pa.Table.from_pandas(
                _typed(pd.DataFrame(columns=EXPORT_COLUMNS)), preserve_index=False).schema)
        writer.close()
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return ExportSummary(rows, str(path))


def _engine_for(url: str) -> Engine:
    return external_engine(url, option="--to-sql",
                           example="postgresql://user@host:5432/db or sqlite:///path.db",
                           dialect_hint="install the database's SQLAlchemy dialect (e.g. "
                                        "snowflake-sqlalchemy, sqlalchemy-bigquery)")
