"""`adsentinel detect` through the real console entry point: an account column, money at stake,
worst first; `--format json` carries money, run, next step and Meta ids."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adsentinel.config import load_settings
from adsentinel.db.engine import make_session_factory, open_database
from impact_world import BREAK_DAYS, LAST_DAY, build_account

ADSENTINEL = Path(sys.executable).with_name("adsentinel")


def adsentinel(*args: str, data_dir: Path, columns: int = 250,
               **settings: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    environment.update(ADSENTINEL_DATA_DIR=str(data_dir), COLUMNS=str(columns), **settings)
    return subprocess.run([str(ADSENTINEL), *args], capture_output=True, text=True,
                          env=environment, cwd=data_dir.parent, timeout=180)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    folder = tmp_path / "data"
    build_account(make_session_factory(open_database(load_settings(data_dir=folder))))
    return folder


def test_detect_json_carries_money_run_next_step_and_meta_ids_worst_first(data_dir):
    for back in range(BREAK_DAYS - 1, 0, -1):  # the days before: the run's first days
        day = LAST_DAY.toordinal() - back
        earlier = adsentinel("detect", "--date", type(LAST_DAY).fromordinal(day).isoformat(),
                             "--format", "json", data_dir=data_dir)
        assert earlier.returncode == 0, earlier.stderr
    result = adsentinel("detect", "--date", LAST_DAY.isoformat(), "--format", "json",
                        data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows
    heads = [r for r in rows if r["incident_id"] is None]
    money = [r["impact_amount"] or 0.0 for r in heads]
    assert money == sorted(money, reverse=True)  # worst first
    typo = next(r for r in rows if r["metric"] == "spend" and r["meta_ids"]["ad"] == "a1")
    assert typo["kind"] == "spend_spike" and typo["impact_amount"] > 800
    assert "budget edits" in typo["next_step"]
    assert typo["meta_ids"] == {"account": None, "campaign": "c1", "adset": "s1", "ad": "a1"}
    assert typo["account"] == "Clinica Sorriso" and typo["currency"] == "BRL"
    cpl = next(r for r in rows if r["metric"] == "cpl" and r["meta_ids"]["ad"] == "a0")
    assert cpl["kind"] == "tracking_break" and "pixel" in cpl["next_step"]
    assert cpl["duration_days"] == BREAK_DAYS
    assert cpl["started"] == type(LAST_DAY).fromordinal(LAST_DAY.toordinal() - 2).isoformat()


def test_detect_splits_an_account_past_the_chunk_size_and_finds_the_same(tmp_path):
    """Past ``CHUNK_ENTITIES`` the account is detected chunk after chunk, each with the whole
    account's facts, as the workers do: the same anomalies as in one piece."""
    found = {}
    for name, settings in (("whole", {}), ("chunked", {"ADSENTINEL_CHUNK_ENTITIES": "1"})):
        folder = tmp_path / name / "data"
        build_account(make_session_factory(open_database(load_settings(data_dir=folder))))
        result = adsentinel("detect", "--date", LAST_DAY.isoformat(), "--format", "json",
                            data_dir=folder, **settings)
        assert result.returncode == 0, result.stderr
        found[name] = sorted((r["meta_ids"]["ad"] or "", r["meta_ids"]["adset"] or "",
                              r["metric"], r["severity"], r["kind"])
                             for r in json.loads(result.stdout))
    assert found["chunked"] == found["whole"] and found["whole"]


def test_detect_table_has_account_and_money_columns(data_dir):
    result = adsentinel("detect", "--date", LAST_DAY.isoformat(), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if "severity" in line)
    for column in ("severity", "at stake", "account", "entity", "metric", "message"):
        assert column in header
    assert "R$ " in result.stdout and "Clinica Sorriso" in result.stdout
    lines = [line for line in result.stdout.splitlines() if "R$ " in line]
    assert "spend" in lines[0]  # the budget typo, the most money at stake, comes first


def test_good_news_is_listed_only_when_asked(data_dir):
    plain = adsentinel("detect", "--date", LAST_DAY.isoformat(), "--format", "json",
                       data_dir=data_dir)
    everything = adsentinel("detect", "--date", LAST_DAY.isoformat(), "--format", "json",
                            "--good-news", data_dir=data_dir)
    assert plain.returncode == everything.returncode == 0
    kinds = [r["kind"] for r in json.loads(plain.stdout)]
    all_kinds = [r["kind"] for r in json.loads(everything.stdout)]
    assert "good_news" not in kinds and "good_news" in all_kinds  # leads up with the typo
    assert len(all_kinds) > len(kinds)
    table = adsentinel("detect", "--date", LAST_DAY.isoformat(), data_dir=data_dir)
    assert "good-news move(s) not listed" in table.stdout


def test_detect_is_the_workers_detection_refused_models_marked_then_retrained(tmp_path):
    from datetime import date

    from adsentinel.service.status import account_statuses
    from factories import insight_rows, write_csv

    data_dir = tmp_path / "data"
    rows = insight_rows(days=60, ads=2, start=date(2026, 8, 1), account="act_77")
    for step in (("import", str(write_csv(tmp_path / "shop.csv", rows))), ("train",)):
        done = adsentinel(*step, data_dir=data_dir)
        assert done.returncode == 0, done.stderr
    pack = next((data_dir / "models").rglob("*.adsp"))
    pack.write_bytes(pack.read_bytes()[:-40] + b"\0" * 40)  # damaged on disk

    result = adsentinel("detect", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "refused" in result.stderr and "retraining their campaigns now" in result.stderr
    factory = make_session_factory(open_database(load_settings(data_dir=data_dir)))
    # marked as the workers mark it, and the retrained pack is whole again
    assert account_statuses(session_factory=factory)[0].models_refused_at is not None
    again = adsentinel("detect", data_dir=data_dir)
    assert again.returncode == 0 and "refused" not in again.stderr, again.stderr
    assert account_statuses(session_factory=factory)[0].models_refused_at is None
