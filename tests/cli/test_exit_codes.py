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
from adsentinel.config import load_settings
from adsentinel.db.engine import make_session_factory, open_database
from adsentinel.service.sync import add_meta_account

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
}
GOOD = {"version": ["--version"], "short help": ["import", "-h"]}  # -h reaches every command


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Every argument-parsing case at once (each is a cold start of the whole CLI)."""
    folder = tmp_path_factory.mktemp("usage")
    cases = {name: args for name, (args, _) in USAGE_ERRORS.items()} | GOOD
    with ThreadPoolExecutor(max_workers=4) as pool:
        started = {name: pool.submit(adsentinel, *args, cwd=folder, columns=80,  # one line all
                                     env={"XDG_DATA_HOME": str(folder / "user-data")})  # the same
                   for name, args in cases.items()}
        return {name: future.result() for name, future in started.items()}


@pytest.mark.parametrize("case", sorted(USAGE_ERRORS))
def test_usage_error_is_one_line_and_exit_2(runs, case):
    result = runs[case]
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: {USAGE_ERRORS[case][1]}\n"


def test_version_and_short_help(runs):
    assert runs["version"].returncode == 0, runs["version"].stderr
    assert runs["version"].stdout == f"adsentinel {__version__}\n"
    assert runs["short help"].returncode == 0, runs["short help"].stderr
    assert "Usage: adsentinel import" in runs["short help"].stdout
    assert "--skip-invalid" in runs["short help"].stdout and not runs["short help"].stderr


def test_a_failed_sync_exits_non_zero(tmp_path):
    """`sync` ends with typer.Exit(code) when an account fails: the process must exit with it."""
    data = tmp_path / "data"
    factory = make_session_factory(open_database(load_settings(data_dir=data)))
    add_meta_account(session_factory=factory, platform_account_id="act_123",
                     token_env="ADSENTINEL_TEST_UNSET_TOKEN")
    result = adsentinel("sync", cwd=tmp_path, env={"ADSENTINEL_DATA_DIR": str(data)})
    assert result.returncode == 78, result.stdout + result.stderr  # the token is a setting
    assert "ADSENTINEL_TEST_UNSET_TOKEN" in result.stderr and "Traceback" not in result.stderr


def test_missing_input_file_exits_66_and_creates_nothing(tmp_path):
    user_data = tmp_path / "user-data"
    result = adsentinel("import", "nowhere.csv", cwd=tmp_path,
                        env={"XDG_DATA_HOME": str(user_data)})
    assert result.returncode == 66, result.stderr
    assert result.stderr == "error: nowhere.csv: no such file\nhint: check the path\n"
    assert not (tmp_path / "adsentinel-data").exists() and not user_data.exists()


def test_data_folder_outside_a_checkout_is_the_user_data_folder(tmp_path):
    """A command run from any folder uses the user's data folder, says so, and leaves no
    ./adsentinel-data behind."""
    user_data = tmp_path / "user-data"
    result = adsentinel("tokens", "create", "--name", "anywhere", cwd=tmp_path,
                        env={"XDG_DATA_HOME": str(user_data)})
    assert result.returncode == 0, result.stderr
    assert (user_data / "adsentinel" / "adsentinel.db").is_file()
    assert not (tmp_path / "adsentinel-data").exists()
    said = " ".join(result.stderr.split())
    assert f"data folder: {user_data / 'adsentinel'} (the user data folder" in said


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
