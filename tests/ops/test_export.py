"""`adsentinel export anomalies`: to a PostgreSQL table (replace, append) and to Parquet, read
back and compared with what is stored."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
from ops_world import build_ops_world
from sqlalchemy import create_engine

from adsentinel.db.engine import open_database
from adsentinel.service.export import (
    EXPORT_COLUMNS,
    anomaly_chunks,
    export_to_parquet,
    export_to_sql,
)


def stored(db_settings) -> pd.DataFrame:
    engine = open_database(db_settings)
    try:
        return pd.concat(list(anomaly_chunks(engine)), ignore_index=True)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_to_a_postgresql_table_replace_then_append(db_settings, session_factory,
                                                   fresh_postgres_url):
    world = build_ops_world(session_factory)
    engine = open_database(db_settings)
    summary = export_to_sql(anomaly_chunks(engine, chunk_rows=3), url=fresh_postgres_url,
                            table="adsentinel_anomalies")
    assert summary.rows == 4 and "adsentinel_anomalies" in summary.target
    target = create_engine(fresh_postgres_url)
    try:
        written = pd.read_sql_table("adsentinel_anomalies", target)
        assert list(written.columns) == EXPORT_COLUMNS
        assert sorted(written["metric"]) == ["cpl", "cpm", "ctr", "spend"]
        assert set(written["account"]) == {"Loja Azul"}
        assert set(written["parent_entity_id"]) == {"s1"}  # the ad's ad set
        assert written["score"].tolist() == [80.0] * 4

        again = export_to_sql(anomaly_chunks(engine, account_ids=[world.broken]),
                              url=fresh_postgres_url, table="adsentinel_anomalies",
                              mode="append")
        assert again.rows == 0
        export_to_sql(anomaly_chunks(engine), url=fresh_postgres_url,
                      table="adsentinel_anomalies", mode="append")
        assert len(pd.read_sql_table("adsentinel_anomalies", target)) == 8
        export_to_sql(anomaly_chunks(engine), url=fresh_postgres_url,
                      table="adsentinel_anomalies")
        assert len(pd.read_sql_table("adsentinel_anomalies", target)) == 4
    finally:
        target.dispose()
        engine.dispose()


def test_to_parquet_streams_chunks_into_one_file(db_settings, session_factory, tmp_path):
    pytest.importorskip("pyarrow")
    build_ops_world(session_factory)
    engine = open_database(db_settings)
    try:
        summary = export_to_parquet(anomaly_chunks(engine, chunk_rows=3),
                                    path=tmp_path / "anomalies.parquet")
    finally:
        engine.dispose()
    assert summary.rows == 4
    read = pd.read_parquet(tmp_path / "anomalies.parquet")
    expected = stored(db_settings)
    assert list(read.columns) == EXPORT_COLUMNS
    pd.testing.assert_frame_equal(read[["anomaly_id", "metric", "severity", "score", "day"]],
                                  expected[["anomaly_id", "metric", "severity", "score", "day"]],
                                  check_dtype=False)
    assert not (tmp_path / "anomalies.parquet.partial").exists()


@pytest.mark.slow  # CLI process starts
@pytest.mark.postgres
def test_the_command_exit_codes(tmp_path, fresh_postgres_url):
    from adsentinel.config import load_settings
    from adsentinel.db.engine import make_session_factory

    settings = load_settings(data_dir=tmp_path / "data")
    build_ops_world(make_session_factory(open_database(settings)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    env["ADSENTINEL_DATA_DIR"] = str(tmp_path / "data")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "adsentinel", "export", "anomalies", *args],
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)

    done = run("--to-sql", fresh_postgres_url, "--table", "exported")
    assert done.returncode == 0, done.stderr
    assert "4 anomalies written to postgresql+psycopg://postgres@" in done.stdout
    unknown = run("--to-sql", "snowflake://me@acct/db", "--table", "t")
    assert unknown.returncode == 78
    assert "no SQLAlchemy dialect or driver for 'snowflake'" in unknown.stderr
    neither = run("--table", "t")
    assert neither.returncode == 1 and "exactly one of --to-sql URL or --parquet" in neither.stderr
