"""The pins (issue 17, item 9): requirements.lock is what a production install gets, so it holds
no test tool; requirements-dev.lock adds them; `make setup` installs both and re-runs when either
changes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def pinned(lock: str) -> dict[str, str]:
    """``name -> version`` of a lock file (comments and ``-r`` lines skipped)."""
    found = {}
    for line in (ROOT / lock).read_text().splitlines():
        if line.strip() and not line.startswith(("#", "-r")):
            name, version = line.split("==")
            found[canonicalize_name(name)] = version
    return found


def declared(extra: str | None) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return {canonicalize_name(Requirement(text).name) for text in texts}


def test_the_runtime_lock_holds_no_test_tool():
    runtime, development = pinned("requirements.lock"), pinned("requirements-dev.lock")
    test_only = declared("test") - declared(None)
    assert test_only >= {"pytest", "hypothesis", "playwright", "schemathesis", "responses"}
    assert not test_only & set(runtime), "test tools in requirements.lock"
    assert test_only <= set(development)
    assert not set(runtime) & set(development), "a package pinned twice"
    assert declared(None) <= set(runtime), "a runtime dependency is not pinned"


def test_the_dev_lock_includes_the_runtime_one_and_setup_installs_both():
    assert "-r requirements.lock" in (ROOT / "requirements-dev.lock").read_text().splitlines()
    makefile = (ROOT / "Makefile").read_text()
    stamp_rule = re.search(r"^\$\(STAMP\):(.*)$", makefile, re.MULTILINE).group(1)
    assert {"requirements.lock", "requirements-dev.lock"} <= set(stamp_rule.split())
    assert "-r requirements.lock -r requirements-dev.lock" in makefile
