"""`adsentinel evaluate` through the real console entry point, and the README table it writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from adsentinel.cli.evaluate_commands import README_END, README_START, _write_readme_table
from adsentinel.errors import AdsentinelError

CONSOLE = str(Path(sys.executable).with_name("adsentinel"))


def run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ADSENTINEL_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run([CONSOLE, *args], capture_output=True, text=True, env=env,
                          timeout=900, cwd=tmp_path)


@pytest.mark.parametrize("args, named", [
    (("--world", "mars"), "--world"),
    (("--seeds", "one"), "--seeds"),
    (("--min-severity", "huge"), "--min-severity"),
    (("--size", "huge"), "--size"),
])
def test_bad_values_are_usage_errors(args, named, tmp_path):
    done = run("evaluate", *args, tmp_path=tmp_path)
    assert done.returncode == 2
    assert named in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_evaluate_a_small_field_world_with_the_settings_and_the_ablation(tmp_path):
    done = run("evaluate", "--world", "field", "--seeds", "1", "--size", "demo",
               tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "settings: z threshold 3" in done.stdout
    for measure in ("recall_detectable", "precision_adset", "false_alarms_per_ad_month",
                    "incident_precision", "engines: adsentinel; adsentinel, no forest"):
        assert measure in done.stdout


def test_the_readme_table_is_written_between_its_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{README_START}\nold table\n{README_END}\nafter\n")
    frame = pd.DataFrame({"field: adsentinel": {"recall": 0.5, "precision": None}})
    _write_readme_table(readme, frame, seeds=(1, 2), min_severity="medium", retrain_every=7)
    text = readme.read_text()
    assert "old table" not in text and text.startswith("# title\n\nbefore\n")
    assert text.endswith(f"{README_END}\nafter\n")
    assert "| recall | 0.5 |" in text and "| precision |  |" in text
    assert "adsentinel evaluate --seeds 1,2 --min-severity medium" in text


def test_a_readme_without_markers_is_refused_with_what_to_add(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(AdsentinelError, match="no evaluation markers"):
        _write_readme_table(readme, pd.DataFrame({"x": {"recall": 1.0}}), seeds=(1,),
                            min_severity="medium", retrain_every=7)
    assert readme.read_text() == "# no markers\n"


def test_evaluating_one_world_rewrites_its_columns_and_keeps_the_others(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"{README_START}\nold\n{README_END}\n")
    both = pd.DataFrame({"lab: adsentinel": {"recall": 0.9, "recall_joint_drift": None},
                         "field: adsentinel": {"recall": 0.6, "recall_joint_drift": 0.1}})
    _write_readme_table(readme, both, seeds=(1, 2), min_severity="medium", retrain_every=7)
    field = pd.DataFrame({"field: adsentinel": {"recall": 0.7, "precision": 0.8}})
    _write_readme_table(readme, field, seeds=(3,), min_severity="medium", retrain_every=7,
                        worlds=("field",))
    text = readme.read_text()
    assert "| measure | lab: adsentinel | field: adsentinel |" in text
    assert text.count("| --- |") == 1  # the header's rule, not read back as a measure
    assert "| recall | 0.9 | 0.7 |" in text  # the lab's kept, the field's new
    assert "| precision |  | 0.8 |" in text and "| recall_joint_drift |  |  |" in text
    assert ("* `lab` columns: written by `adsentinel evaluate --seeds 1,2 --min-severity medium"
            in text)
    assert ("* `field` columns: written by `adsentinel evaluate --world field --seeds 3 "
            "--min-severity medium --retrain-every 7 --readme README.md`." in text)
    lab = pd.DataFrame({"lab: adsentinel": {"recall": 0.95}})
    _write_readme_table(readme, lab, seeds=(4,), min_severity="medium", retrain_every=7,
                        worlds=("lab",))
    text = readme.read_text()
    assert "| measure | lab: adsentinel | field: adsentinel |" in text  # the lab's stay first
    assert "| recall | 0.95 | 0.7 |" in text and "| precision |  | 0.8 |" in text
    assert text.index("* `lab` columns") < text.index("* `field` columns")


def test_a_table_written_by_one_command_keeps_that_command_for_the_world_not_evaluated(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"{README_START}\n\nWritten by `adsentinel evaluate --seeds 1`.\n\n"
                      "| measure | lab: adsentinel | field: adsentinel |\n| --- | ---: | ---: |\n"
                      f"| recall | 0.9 | 0.6 |\n\n{README_END}\n")
    field = pd.DataFrame({"field: adsentinel": {"recall": 0.7}})
    _write_readme_table(readme, field, seeds=(1,), min_severity="medium", retrain_every=7,
                        worlds=("field",))
    text = readme.read_text()
    assert "* `lab` columns: written by `adsentinel evaluate --seeds 1`." in text
    assert "| recall | 0.9 | 0.7 |" in text
