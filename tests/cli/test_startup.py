"""Start-up of simple commands through the real console entry point: `adsentinel --help`,
`--version` and `config show` import none of the heavy libraries (pandas, numpy, scikit-learn,
SciPy, Plotly; SQLAlchemy but for config show with a password in a URL), and stay under 100 MB.

Which modules a process imported is read from Python's own ``-X importtime`` report
(``PYTHONPROFILEIMPORTTIME``), which is exact, unlike a timing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ADSENTINEL = Path(sys.executable).with_name("adsentinel")
HEAVY = ("pandas", "numpy", "sklearn", "scipy", "plotly", "sqlalchemy", "numba", "celery",
         "fastapi", "facebook_business")


def _imported(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, set[str]]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    environment.update(PYTHONPROFILEIMPORTTIME="1", ADSENTINEL_DATA_DIR=str(tmp_path / "data"))
    result = subprocess.run([str(ADSENTINEL), *args], capture_output=True, text=True,
                            env=environment, cwd=tmp_path, timeout=60)
    modules = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
               if line.startswith("import time:")}
    return result, modules


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["config", "show"],
                                  ["detect", "--help"]])
def test_simple_commands_import_no_heavy_library(args, tmp_path):
    result, modules = _imported(args, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "typer" in modules  # the report was read
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == [], f"{' '.join(args)} imported {heavy[:10]}"


def _peak_kib(args: list[str], tmp_path: Path) -> int:
    """Peak resident memory of ``adsentinel ARGS``, measured by a small Python parent whose only
    child it is (``RUSAGE_CHILDREN`` of this test process would count every earlier child)."""
    measure = ("import resource, subprocess, sys; "
               "code = subprocess.run(sys.argv[1:], capture_output=True).returncode; "
               "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    environment["ADSENTINEL_DATA_DIR"] = str(tmp_path / "data")
    out = subprocess.run([sys.executable, "-c", measure, str(ADSENTINEL), *args],
                         capture_output=True, text=True, env=environment, cwd=tmp_path,
                         timeout=60, check=True).stdout.split()
    assert out[0] == "0", f"{args} failed"
    return int(out[1])


@pytest.mark.parametrize("args", [["--help"], ["config", "show"]])
def test_help_and_config_show_stay_under_100_mb(args, tmp_path):
    assert _peak_kib(args, tmp_path) < 100 * 1024


def test_version_prints_the_version(tmp_path):
    from adsentinel import __version__

    result, _ = _imported(["--version"], tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"adsentinel {__version__}"
