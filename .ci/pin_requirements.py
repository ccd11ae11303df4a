"""Re-pin requirements.lock and requirements-dev.lock from the packages installed in this venv.

requirements.lock gets what ``adsentinel`` needs at runtime (its ``[project] dependencies`` and
everything they pull in); requirements-dev.lock gets what the ``test`` extra adds on top. Run it
with the venv's Python (``make lock``); a package installed by hand that neither list reaches is
named on stderr and pinned nowhere.
"""
from __future__ import annotations

import importlib.metadata as metadata
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
DEV_HEADER = ("# Test and development tools (pytest, Playwright, Schemathesis...) with their own "
              "dependencies.\n# The runtime pins are in requirements.lock, which this file includes.\n"
              "-r requirements.lock\n")


def requirement_closure(roots: list[Requirement]) -> dict[str, metadata.Distribution]:
    """Every installed distribution reachable from ``roots``, keyed by canonical name."""
    found: dict[str, metadata.Distribution] = {}
    extras_seen: dict[str, set[str]] = {}
    pending = [(root, set(root.extras)) for root in roots]
    while pending:
        requirement, extras = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in extras_seen and extras <= extras_seen[name]:
            continue
        extras_seen[name] = extras_seen.get(name, set()) | extras
        distribution = metadata.distribution(requirement.name)
        found[name] = distribution
        for text in distribution.requires or []:
            child = Requirement(text)
            wanted = extras_seen[name] or {""}
            if child.marker and not any(child.marker.evaluate({"extra": e}) for e in wanted):
                continue
            pending.append((child, set(child.extras)))
    return found


def pins(distributions: dict[str, metadata.Distribution]) -> str:
    """``name==version`` lines sorted case-insensitively, as ``pip freeze`` writes them."""
    lines = sorted((d.metadata["Name"], d.version) for d in distributions.values())
    return "".join(f"{name}=={version}\n" for name, version in sorted(lines, key=lambda p: p[0].lower()))


def main() -> int:
    own = [Requirement(text) for text in metadata.distribution("adsentinel").requires or []]
    runtime_roots = [r for r in own if r.marker is None]
    test_roots = [r for r in own if r.marker is not None and r.marker.evaluate({"extra": "test"})]
    runtime = requirement_closure(runtime_roots)
    development = {name: d for name, d in requirement_closure(test_roots).items() if name not in runtime}
    (ROOT / "requirements.lock").write_text(pins(runtime))
    (ROOT / "requirements-dev.lock").write_text(DEV_HEADER + pins(development))
    installed = {canonicalize_name(d.metadata["Name"]) for d in metadata.distributions()}
    unpinned = installed - set(runtime) - set(development) - {"adsentinel", "pip", "setuptools", "wheel"}
    if unpinned:
        print("installed but required by nothing, left out: " + ", ".join(sorted(unpinned)), file=sys.stderr)
    print(f"requirements.lock: {len(runtime)} pins; requirements-dev.lock: {len(development)} pins")
    return 0


if __name__ == "__main__":
    sys.exit(main())
