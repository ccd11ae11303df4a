"""Exit codes and usage errors through the real console entry point (`.venv/bin/adsentinel` in a
subprocess), and the data folder a command picks when ADSENTINEL_DATA_DIR is not set (issue 17,
items 12 to 14)."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from adsentinel import __version__
from adsentinel.accounts.service import add_meta_account
from adsentinel.config import load_settings
from adsentinel.db.engine import make_session_factory, open_database

#: the console script pip generated for ``[project.scripts]``, next to this interpreter
ADSENTINEL = Path(sys.executable).with_name("adsentinel")


def adsentinel(*args: str, cwd: Path, env: dict[str, str] | None = None, columns: int = 300
               ) -> subprocess.CompletedProcess:
    """Run ``adsentinel ARGS`` as a user would, without the developer's ADSENTINEL_* variables."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    environment.update(env or {})
    environment["COLUMNS"] = str(columns)
    return subprocess.run([str(ADSENTINEL), *args], capture_output=True, text=True,
                          env=environment, cwd=cwd, timeout=180)


USAGE_ERRORS = {
    "no command": ([], "adsentinel needs a command (try 'adsentinel --help')"),
    "no sub-command": (["db"], "adsentinel db needs a command (try 'adsentinel db --help')"),
    "unknown option": (["--bogus"], "No such option: --bogus (try 'adsentinel --help')"),
    "missing argument": (["import"], "Missing argument 'file'. (try 'adsentinel import --help')"),
    "bad choice": (["detect", "--format", "xml"],
                   "Invalid value for '--format': 'xml' is not one of 'table', 'json'. "
                   "(try 'adsentinel detect --help')"),
    "bad day": (["detect", "--date", "31/12/2026"],
                "--date must be a date YYYY-MM-DD, got '31/12/2026' "
                "(try 'adsentinel detect --help')"),
}
GOOD = {"version": ["--version"], "short help": ["import", "-h"]}  # -h reaches every command


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Every case at once, each in a folder of its own (each is a cold start of the whole CLI,
    seconds of CPU): the result and the folder it ran in."""
    base = tmp_path_factory.mktemp("cli")
    cases: dict[str, tuple[list[str], dict[str, str]]] = {
        name: (args, {}) for name, (args, _) in USAGE_ERRORS.items()} | {
        name: (args, {}) for name, args in GOOD.items()}
    cases["missing input"] = (["import", "nowhere.csv"], {})
    cases["anywhere"] = (["tokens", "create", "--name", "anywhere"], {})
    sync_data = base / "sync" / "data"
    factory = make_session_factory(open_database(load_settings(data_dir=sync_data)))
    add_meta_account(session_factory=factory, platform_account_id="act_123",
                     token_env="ADSENTINEL_TEST_UNSET_TOKEN")
    cases["failed sync"] = (["sync"], {"ADSENTINEL_DATA_DIR": str(sync_data)})
    with ThreadPoolExecutor(max_workers=4) as pool:
        started = {}
        for name, (args, env) in cases.items():
            folder = base / name.replace(" ", "-")
            folder.mkdir(exist_ok=True)
            narrow = 80 if name in USAGE_ERRORS else 300  # a log line may wrap, not an error
            started[name] = (pool.submit(adsentinel, *args, cwd=folder, columns=narrow,
                                         env={"XDG_DATA_HOME": str(folder / "user-data"), **env}),
                             folder)
        return {name: (future.result(), folder) for name, (future, folder) in started.items()}


@pytest.mark.parametrize("case", sorted(USAGE_ERRORS))
def test_usage_error_is_one_line_and_exit_2(runs, case):
    result, _ = runs[case]
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: {USAGE_ERRORS[case][1]}\n"  # one line, even 80 wide


def test_version_and_short_help(runs):
    version, _ = runs["version"]
    assert version.returncode == 0, version.stderr
    assert version.stdout == f"adsentinel {__version__}\n"
    short_help, _ = runs["short help"]
    assert short_help.returncode == 0, short_help.stderr
    assert "Usage: adsentinel import" in short_help.stdout
    assert "--skip-invalid" in short_help.stdout and not short_help.stderr


def test_a_failed_sync_exits_non_zero(runs):
    """`sync` ends with typer.Exit(code) when an account fails: the process must exit with it."""
    result, _ = runs["failed sync"]
    assert result.returncode == 78, result.stdout + result.stderr  # the token is a setting
    assert "ADSENTINEL_TEST_UNSET_TOKEN" in result.stderr and "Traceback" not in result.stderr


def test_missing_input_file_exits_66_and_creates_nothing(runs):
    result, folder = runs["missing input"]
    assert result.returncode == 66, result.stderr
    assert result.stderr == "error: nowhere.csv: no such file\nhint: check the path\n"
    assert not (folder / "adsentinel-data").exists() and not (folder / "user-data").exists()


def test_data_folder_outside_a_checkout_is_the_user_data_folder(runs):
    """A command run from any folder uses the user's data folder, says so, and leaves no
    ./adsentinel-data behind."""
    result, folder = runs["anywhere"]
    user_data = folder / "user-data" / "adsentinel"
    assert result.returncode == 0, result.stderr
    assert (user_data / "adsentinel.db").is_file()
    assert not (folder / "adsentinel-data").exists()
    said = " ".join(result.stderr.split())
    assert f"data folder: {user_data} (the user data folder" in said


@pytest.mark.slow
def test_data_folder_of_a_checkout_and_of_the_setting(tmp_path):
    (tmp_path / "adsentinel-data").mkdir()
    chosen = tmp_path / "chosen"
    env = {"XDG_DATA_HOME": str(tmp_path / "user-data")}
    with ThreadPoolExecutor(max_workers=2) as pool:
        local = pool.submit(adsentinel, "tokens", "create", "--name", "local", cwd=tmp_path,
                            env=env)
        setting = pool.submit(adsentinel, "tokens", "create", "--name", "set", cwd=tmp_path,
                              env={**env, "ADSENTINEL_DATA_DIR": str(chosen)})
        local, setting = local.result(), setting.result()
    assert local.returncode == 0 and setting.returncode == 0, local.stderr + setting.stderr
    assert (tmp_path / "adsentinel-data" / "adsentinel.db").is_file()
    assert (chosen / "adsentinel.db").is_file()
    assert not (tmp_path / "user-data").exists()
    assert "./adsentinel-data exists here" in " ".join(local.stderr.split())
    assert "set by ADSENTINEL_DATA_DIR" in " ".join(setting.stderr.split())
