"""The CLI as a user runs it: real processes, exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from factories import insight_rows, write_csv


def run_cli(*args: str, env: dict[str, str] | None = None, cwd=None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    environment.update(env or {})
    environment["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "adsentinel", *args], capture_output=True,
                          text=True, env=environment, cwd=cwd, timeout=120)


def test_config_show_masks_secrets(tmp_path):
    result = run_cli("config", "show", "--json", cwd=tmp_path, env={
        "ADSENTINEL_DATABASE_URL": "postgresql://app:hunter2@db/ads",
        "ADSENTINEL_MODEL_SIGNING_KEY": "topsecretkey"})
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout and "topsecretkey" not in result.stdout
    assert '"isolation_forest_min_samples": 50' in result.stdout


def test_invalid_setting_is_one_clear_line(tmp_path):
    result = run_cli("config", "show", cwd=tmp_path,
                     env={"ADSENTINEL_ISOLATION_FOREST_CONTAMINATION": "2"})
    assert result.returncode == 78
    assert "ADSENTINEL_ISOLATION_FOREST_CONTAMINATION" in result.stderr
    assert "Traceback" not in result.stderr


def test_import_then_bad_import_writes_nothing(tmp_path):
    good = write_csv(tmp_path / "good.csv", insight_rows(days=2, ads=2))
    result = run_cli("import", str(good), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "rows imported" in result.stdout

    rows = insight_rows(days=1, ads=1, account="act_2")
    rows[0][6] = "lots"
    bad = write_csv(tmp_path / "bad.csv", rows)
    result = run_cli("import", str(bad), cwd=tmp_path)
    assert result.returncode == 65
    assert "bad.csv:2 column 'impressions': 'lots' is not a number" in result.stderr
    assert "Traceback" not in result.stderr
    # no ADSENTINEL_DATA_DIR and no ./adsentinel-data: the user's data folder (conftest's)
    assert (tmp_path / "user-data" / "adsentinel" / "adsentinel.db").exists()
    assert not (tmp_path / "adsentinel-data").exists()


def test_unreachable_database_is_a_clear_error(tmp_path):
    write_csv(tmp_path / "x.csv", insight_rows(days=1, ads=1))
    result = run_cli("import", "x.csv", cwd=tmp_path, env={
        "ADSENTINEL_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert result.returncode == 69
    assert "cannot connect to the database" in result.stderr
    assert "ADSENTINEL_DATABASE_URL" in result.stderr


def test_db_upgrade_on_postgresql(fresh_postgres_url, tmp_path):
    env = {"ADSENTINEL_DATABASE_URL": fresh_postgres_url}
    first = run_cli("db", "upgrade", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "migrated from empty to" in first.stdout
    again = run_cli("db", "upgrade", cwd=tmp_path, env=env)
    assert "already at revision" in again.stdout


@pytest.mark.slow
def test_demo_runs_on_the_embedded_default(tmp_path):
    (tmp_path / "adsentinel-data").mkdir()  # as `make demo` does in a checkout
    result = run_cli("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "labelled incidents" in result.stdout
    assert "anomalies found" in result.stdout and "trained" in result.stdout
    report = tmp_path / "adsentinel-data" / "demo" / "report.html"
    assert report.read_text().count("<section>") > 0
    database = tmp_path / "adsentinel-data" / "adsentinel.db"

    def anomaly_keys():
        import sqlite3

        with sqlite3.connect(database) as conn:
            return sorted(conn.execute("SELECT entity_id, day, metric FROM anomalies"))

    first = anomaly_keys()
    assert first
    again = run_cli("demo", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert anomaly_keys() == first  # the same anomalies again, none duplicated
