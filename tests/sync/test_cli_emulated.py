"""The real console entry point (a subprocess) against the Graph API emulator: onboarding with
`accounts discover` and `accounts add`, `sync`, and a broken sync in `accounts list`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from graph_emulator import EmulatedAccount

TOKEN = "EAAemulatorToken0000000000000000000003"


@pytest.fixture
def cli(emulator, tmp_path):
    emulator.add_account(EmulatedAccount(number=1010, name="Clinica Norte", currency="BRL",
                                         timezone_name="America/Sao_Paulo"), TOKEN)
    emulator.add_account(EmulatedAccount(number=2020, name="Loja Sul"), TOKEN)
    emulator.add_account(EmulatedAccount(number=3030, name="Someone else's"), "EAAother")
    emulator.businesses["4040"] = {"owned_ad_accounts": ["act_2020"],
                                   "client_ad_accounts": ["act_1010", "act_3030"]}
    base = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    base.update(ADSENTINEL_DATA_DIR=str(tmp_path / "data"), ADSENTINEL_META_GRAPH_URL=emulator.url,
                ADSENTINEL_SYNC_WINDOW_DAYS="2", ADSENTINEL_ISOLATION_FOREST_HISTORY_DAYS="50",
                ADSENTINEL_ISOLATION_FOREST_MIN_SAMPLES="2", COLUMNS="250", NO_COLOR="1")
    base.pop("META_TOKEN", None)

    def run(*args: str, token: bool = True) -> subprocess.CompletedProcess:
        env = dict(base, META_TOKEN=TOKEN) if token else base
        return subprocess.run([sys.executable, "-m", "adsentinel", *args], env=env,
                              capture_output=True, text=True, timeout=120, check=False)
    return run


@pytest.mark.slow  # six CLI processes: about 20 s on a busy machine
def test_onboarding_discover_add_sync_and_a_broken_sync_listed(cli, emulator):
    refused = cli("accounts", "add", "--account-id", "act_1010", "--token-env", "META_TOKEN",
                  token=False)
    assert refused.returncode == 78, refused.stderr
    assert "export META_TOKEN='EAA...'" in refused.stderr

    listed = cli("accounts", "discover", "--token-env", "META_TOKEN", "--business", "4040")
    assert listed.returncode == 0, listed.stderr
    assert "Clinica Norte" in listed.stdout and "Loja Sul" in listed.stdout
    assert "act_3030" not in listed.stdout  # a client account this token cannot read
    assert "America/Sao_Paulo" in listed.stdout and "ACTIVE" in listed.stdout
    row = next(line for line in listed.stdout.splitlines() if "act_1010" in line)
    assert row.rstrip(" │").endswith("-"), row  # the refused add stored nothing

    added = cli("accounts", "discover", "--token-env", "META_TOKEN", "--add", "act_1010")
    assert added.returncode == 0, added.stderr
    assert "added Clinica Norte (act_1010)" in added.stdout
    synced = cli("sync")
    assert synced.returncode == 0, synced.stderr
    assert "succeeded" in synced.stdout and TOKEN not in synced.stdout + synced.stderr

    emulator.expired_tokens.add(TOKEN)
    assert cli("sync").returncode == 77
    accounts = cli("accounts", "list").stdout
    assert "sync broken since" in accounts and "1 failed in a row" in accounts
