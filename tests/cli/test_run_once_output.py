"""`adsentinel run --once` through the real console entry point: tables, not Python dicts, and
a plain sentence when alerts went nowhere because the account has no channel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from adsentinel.config import load_settings
from adsentinel.db.engine import make_session_factory, open_database
from impact_world import build_account

ADSENTINEL = Path(sys.executable).with_name("adsentinel")


def adsentinel(*args: str, data_dir: Path, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    environment.update(ADSENTINEL_DATA_DIR=str(data_dir), COLUMNS="200", **(env or {}))
    return subprocess.run([str(ADSENTINEL), *args], capture_output=True, text=True,
                          env=environment, cwd=data_dir.parent, timeout=300)


def test_run_once_prints_tables_and_says_alerts_had_no_channel(tmp_path):
    data_dir = tmp_path / "data"
    build_account(make_session_factory(open_database(load_settings(data_dir=data_dir))))
    result = adsentinel("run", "--once", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for title in ("training", "detection", "alert delivery"):
        assert title in out
    assert "{" not in out and "'" not in out  # no Python dict printed
    assert "Clinica Sorriso" in out and "critical" in out
    assert "alerts not sent for Clinica Sorriso: no alert channel is configured" in out

    added = adsentinel("alerts", "channel", "add", "--account", "Clinica Sorriso", "--kind",
                       "email", "--target", "media@example.com", data_dir=data_dir)
    assert added.returncode == 0, added.stderr
    again = adsentinel("run", "--once", data_dir=data_dir)
    assert again.returncode == 0, again.stderr
    assert "alerts not sent" not in again.stdout and "detection" in again.stdout
