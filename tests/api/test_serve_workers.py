"""`adsentinel serve --workers N`: N real server processes on PostgreSQL, jobs on Celery; and a
clear refusal when jobs would run inside one server process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from served_app import free_port, stop, wait_until_up
from typer.testing import CliRunner

from adsentinel.cli import app as cli_app
from service_checks import REDIS_URL


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


def test_several_workers_with_jobs_in_process_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("ADSENTINEL_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli_app, ["serve", "--workers", "2", "--jobs", "in-process"])
    assert result.exit_code != 0
    assert "--workers 2 needs the Celery job runner" in str(result.exception or result.output)


@pytest.mark.slow
def test_two_server_processes_answer_on_postgresql(fresh_postgres_url, tmp_path, monkeypatch):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    environment.update({"ADSENTINEL_DATA_DIR": str(tmp_path / "data"),
                        "ADSENTINEL_DATABASE_URL": fresh_postgres_url,
                        "ADSENTINEL_BROKER_URL": REDIS_URL})
    for key, value in environment.items():
        if key.startswith("ADSENTINEL_"):
            monkeypatch.setenv(key, value)
    created = CliRunner().invoke(cli_app, ["db", "upgrade"])
    assert created.exit_code == 0, created.output
    created = CliRunner().invoke(cli_app, ["tokens", "create", "--name", "two-workers"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "adsentinel", "serve", "--port", str(port), "--workers", "2",
             "--jobs", "celery"], env=environment, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, server, log)
        deadline = time.monotonic() + 30
        while len(_children(server.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_children(server.pid)) >= 2, log.read_text()
        for _ in range(6):  # answered, whichever process takes the connection
            request = urllib.request.Request(base + "/api/v1/accounts",
                                             headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
                assert json.load(response) == []
        assert "2 server processes" in log.read_text()
    finally:
        stop(server)
