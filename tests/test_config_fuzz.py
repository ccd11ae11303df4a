"""Property-based: whatever the ``ADSENTINEL_*`` variables or the ``.env`` file hold, settings load
with every value inside its documented constraints, or fail with one ConfigError that names the
variable and shows no secret: never another exception. The real CLI (``adsentinel config show``)
turns that error into exit code 78 and a one-line message, never a traceback."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from typer.testing import CliRunner

from adsentinel.cli import main
from adsentinel.config import Settings
from fuzz_inputs import (
    SECRET_MARK,
    VALID_ENV,
    check_settings_environment,
    dotenv_files,
    settings_environments,
)

#: environments that crashed or slipped through once (issue #9), kept as explicit examples
REGRESSIONS = [
    {"ADSENTINEL_TIMEZONE": "a" * 300},  # ZoneInfo: OSError "File name too long"
    {"ADSENTINEL_TIMEZONE": "America"},  # ZoneInfo: IsADirectoryError
    {"ADSENTINEL_BROKER_URL": f"redis://u:{SECRET_MARK}x@h:abc/0"},  # ValueError in config show
    {"ADSENTINEL_DATA_DIR": "\udcff"},  # a byte that is not UTF-8: UnicodeEncodeError later
    {"ADSENTINEL_SMTP_HOST": "caf\udce9"},
    {"ADSENTINEL_ANOMALY_Z_THRESHOLD": "inf"},  # loaded: no score would ever reach it
    {"ADSENTINEL_FREQUENCY_IDEAL": "Infinity"},
    {"ADSENTINEL_TASK_TIME_LIMIT": "8000"},  # cross-field error named no variable
    {"ADSENTINEL_ISOLATION_FOREST_MIN_SAMPLES": "91"},
]
DOTENV_REGRESSIONS = [b"ADSENTINEL_TIMEZONE=\xff\xfe"]  # .env not UTF-8: UnicodeDecodeError


def _fuzz(examples: int):
    return hypothesis_settings(
        max_examples=examples, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _environment_property(test):
    for values in reversed(REGRESSIONS):
        test = example(values=values)(test)
    return given(values=settings_environments())(test)


def _dotenv_property(test):
    for data in reversed(DOTENV_REGRESSIONS):
        test = example(data=data)(test)
    return given(data=dotenv_files())(test)


def test_every_setting_is_fuzzed():
    assert set(VALID_ENV) == set(Settings.model_fields)


@_fuzz(300)
@_environment_property
def test_any_environment_loads_within_constraints_or_is_named(values):
    outcome = check_settings_environment(values)
    assert outcome.kind != "crash", outcome.detail


@_fuzz(100)
@_dotenv_property
def test_any_dotenv_file_loads_within_constraints_or_is_named(data):
    outcome = check_settings_environment({}, dotenv=data)
    assert outcome.kind != "crash", outcome.detail


@pytest.mark.slow
@_fuzz(4000)
@_environment_property
def test_thousands_of_environments(values):
    outcome = check_settings_environment(values)
    assert outcome.kind != "crash", outcome.detail


@pytest.mark.slow
@_fuzz(1500)
@_dotenv_property
def test_thousands_of_dotenv_files(data):
    outcome = check_settings_environment({}, dotenv=data)
    assert outcome.kind != "crash", outcome.detail


@pytest.fixture
def _logging_restored():
    """``config show`` configures the root logger; put it back for the tests that follow."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@_fuzz(40)
@_environment_property
def test_config_show_exits_0_or_78_with_one_clear_line(values, _logging_restored, monkeypatch):
    """Through the CLI's own ``main`` (argument parsing, error mapping) in a CliRunner."""
    expected = check_settings_environment(values)
    monkeypatch.setattr(sys, "argv", ["adsentinel", "config", "show", "--json"])
    with CliRunner().isolation(env=values) as (stdout, stderr, _):
        with pytest.raises(SystemExit) as exited:
            main()
            raise SystemExit(0)
        out, err = stdout.getvalue().decode(), stderr.getvalue().decode()
    assert "Traceback" not in err and SECRET_MARK not in out + err
    if expected.kind == "accepted":
        assert exited.value.code == 0, err
        assert set(json.loads(out)) == set(Settings.model_fields)
    else:
        assert exited.value.code == 78, err
        assert err.startswith("error: invalid settings: ") and "ADSENTINEL_" in err, err
        assert "\nhint: fix the environment variable" in err, err


@pytest.mark.parametrize(("variable", "value", "code", "message"), [
    ("ADSENTINEL_TIMEZONE", "America", 78, "ADSENTINEL_TIMEZONE: unknown timezone 'America'"),
    ("ADSENTINEL_DATA_DIR", "caf\udce9", 78, "ADSENTINEL_DATA_DIR: is not UTF-8 text"),
    ("ADSENTINEL_SMTP_PORT", "²", 78, "ADSENTINEL_SMTP_PORT: Input should be a valid integer"),
    ("ADSENTINEL_TASK_TIME_LIMIT", "8000", 78, "ADSENTINEL_TASK_TIME_LIMIT < "),
    ("ADSENTINEL_BROKER_URL", "redis://u:hunter2x@h:abc/0", 0, "redis:***@h:abc/0"),
])
def test_real_process_reports_one_line(tmp_path, variable, value, code, message):
    """The installed entry point, the value passed as raw environment bytes (a surrogate is a
    byte that is not UTF-8); a broker URL the masking cannot parse is shown without password."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    environment.update({variable: value, "COLUMNS": "300"})
    result = subprocess.run([sys.executable, "-m", "adsentinel", "config", "show"],
                            capture_output=True, text=True, errors="backslashreplace",
                            env=environment, cwd=tmp_path, timeout=120)
    assert result.returncode == code, result.stderr
    assert message in (result.stderr if code else result.stdout)
    assert "Traceback" not in result.stderr and "hunter2" not in result.stdout + result.stderr
