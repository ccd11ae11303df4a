"""The package's modules import one another without a cycle (issue 20, item 3), and the server
does not depend on the command line.

The import graph is read from the source with :mod:`ast`, so it holds every import statement:
at module level, inside functions (an import moved into a function hides a cycle from Python's
start-up but does not remove it) and under ``if TYPE_CHECKING:``; relative and absolute; and
``from package import name`` where ``name`` is a module counts as an import of that module.

Importing ``a.b.c`` also runs ``a/b/__init__.py``; that implicit step is not an arrow here (an
``__init__.py`` that hands on its submodules' names would otherwise be a cycle with each of them,
and Python resolves it: the package is in ``sys.modules`` before its submodules load). An
explicit ``from a.b import name`` is an arrow to ``a.b``.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = ROOT / "src" / "adsentinel"

#: cycles kept on purpose: the modules of the cycle -> why, and what would remove it
ALLOWED_CYCLES: dict[frozenset[str], str] = {}

HOW_TO_BREAK = ("break it the plain way: move what both sides need into a module both import, "
                "pass a function in, or split a module; an import inside a function hides a "
                "cycle, it does not remove it")


@dataclass(frozen=True)
class Import:
    """One import statement's arrow: ``source`` (a module) imports ``target`` at ``path:line``
    (``path`` relative to the folder that holds the package)."""

    source: str
    target: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.as_posix()}:{self.line} imports {self.target}"


def module_files(package_dir: Path) -> dict[str, Path]:
    """``dotted module name -> file`` of every ``.py`` file under ``package_dir`` (a package's
    ``__init__.py`` is the package's own name)."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _known_module(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of ``modules`` (``a.b.func`` -> ``a.b``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imported_names(node: ast.Import | ast.ImportFrom, module: str, path: Path) -> list[str]:
    """The dotted names one statement imports, relative ones made absolute."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        parts = package.split(".")
        if node.level - 1 >= len(parts):
            raise ValueError(f"{path}:{node.lineno}: relative import beyond the top package")
        base = ".".join(parts[:len(parts) - (node.level - 1)] + ([base] if base else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def imports_of(module: str, path: Path, modules: dict[str, Path], *, root: Path
               ) -> list[Import]:
    """Every arrow from ``module`` (the file ``path``) to another of ``modules``, function-level
    imports included; paths are shown relative to ``root``.

    ``from a import b`` is an arrow to ``a.b`` when that is a module and to ``a`` otherwise."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        names = _imported_names(node, module, path)
        if isinstance(node, ast.ImportFrom):
            base, members = names[0], names[1:]
            names = [m if m in modules else base for m in members]
        for name in names:
            target = _known_module(name, modules)
            if target is not None and target != module:
                found.append(Import(module, target, path.relative_to(root), node.lineno))
    return found


def import_graph(package_dir: Path) -> dict[str, list[Import]]:
    """``module -> its arrows`` for every module of the package in ``package_dir``."""
    modules = module_files(package_dir)
    return {module: imports_of(module, path, modules, root=package_dir.parent)
            for module, path in modules.items()}


def _reachable(graph: dict[str, list[Import]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for arrow in graph[todo.pop()]:
            if arrow.target not in seen:
                seen.add(arrow.target)
                todo.append(arrow.target)
    return seen


def _shortest_loop(graph: dict[str, list[Import]], start: str, group: frozenset[str]
                   ) -> list[Import]:
    """The shortest chain of imports inside ``group`` from ``start`` back to ``start``."""
    came_by: dict[str, Import] = {}
    todo = deque([start])
    while todo:
        module = todo.popleft()
        for arrow in sorted(graph[module], key=lambda a: (a.target, a.line)):
            if arrow.target not in group or arrow.target in came_by:
                continue
            came_by[arrow.target] = arrow
            if arrow.target == start:
                loop = [arrow]
                while loop[0].source != start:
                    loop.insert(0, came_by[loop[0].source])
                return loop
            todo.append(arrow.target)
    raise AssertionError(f"{start} is in a cycle but no loop leads back to it")


def import_cycles(graph: dict[str, list[Import]]) -> dict[frozenset[str], list[Import]]:
    """Each group of modules that import one another (a strongly connected group of two or more
    modules) -> one shortest loop of imports through its first module, to name it."""
    reach = {module: _reachable(graph, module) for module in graph}
    cycles: dict[frozenset[str], list[Import]] = {}
    for module in sorted(graph):
        group = frozenset(m for m in reach[module] if module in reach[m])
        if len(group) > 1 and group not in cycles:
            cycles[group] = _shortest_loop(graph, min(group), group)
    return cycles


def describe(group: frozenset[str], loop: list[Import]) -> str:
    return (f"import cycle between {len(group)} modules ({', '.join(sorted(group))}): "
            + " -> ".join(str(arrow) for arrow in loop))


def imports_between(graph: dict[str, list[Import]], importer: str, imported: str
                    ) -> list[Import]:
    """The arrows from the package ``importer`` (or a module in it) to the package ``imported``."""
    def inside(module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    return [arrow for module, arrows in sorted(graph.items()) if inside(module, importer)
            for arrow in arrows if inside(arrow.target, imported)]


def test_the_package_has_no_import_cycle():
    cycles = import_cycles(import_graph(PACKAGE_DIR))
    unexpected = [describe(group, loop) for group, loop in cycles.items()
                  if group not in ALLOWED_CYCLES]
    assert not unexpected, (f"src/adsentinel has {len(unexpected)} import cycle(s); "
                            f"{HOW_TO_BREAK}:\n" + "\n".join(unexpected))
    gone = [sorted(group) for group in ALLOWED_CYCLES if group not in cycles]
    assert not gone, f"these cycles are gone: remove them from ALLOWED_CYCLES in {__file__}: {gone}"


def test_the_server_does_not_import_the_command_line():
    """``adsentinel.api`` is an edge beside the CLI, not under it: settings and logging set-up
    come from ``adsentinel.config`` and ``adsentinel.logging_setup``."""
    wrong = imports_between(import_graph(PACKAGE_DIR), "adsentinel.api", "adsentinel.cli")
    assert not wrong, ("the API imports the CLI (move what it needs to a module below both): "
                       + "; ".join(map(str, wrong)))


# The graph itself, on a small package written for the purpose: each kind of import is seen.

def _write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_the_graph_holds_function_level_relative_and_module_imports(tmp_path):
    package = _write_package(tmp_path, {
        "__init__.py": "from pkg.a import run\n",
        "a.py": "import os\nfrom . import b\n",
        "b.py": "def later():\n    from .sub.c import thing\n",
        "sub/__init__.py": "",
        "sub/c.py": "import pkg.sub.d as d\nfrom .. import a\nthing = 1\n",
        "sub/d.py": "from pkg.sub import c\nfrom pkg import run\n",
    })
    arrows = {(a.source, a.target, a.line) for arrows in import_graph(package).values()
              for a in arrows}
    assert arrows == {
        ("pkg", "pkg.a", 1),
        ("pkg.a", "pkg.b", 2),          # `from . import b`: b is a module
        ("pkg.b", "pkg.sub.c", 2),      # inside a function, relative, `thing` is no module
        ("pkg.sub.c", "pkg.sub.d", 1),  # `import x.y as z`
        ("pkg.sub.c", "pkg.a", 2),      # two levels up
        ("pkg.sub.d", "pkg.sub.c", 1),
        ("pkg.sub.d", "pkg", 2),        # a name of the package's __init__.py
    }


def test_a_cycle_hidden_in_a_function_is_found_and_named(tmp_path):
    package = _write_package(tmp_path, {
        "__init__.py": "",
        "app.py": "from pkg.pages import router\n",
        "pages.py": "router = None\n\ndef user():\n    from pkg.app import LoginRequired\n",
        "alone.py": "from pkg import app\n",
    })
    cycles = import_cycles(import_graph(package))
    assert list(cycles) == [frozenset({"pkg.app", "pkg.pages"})]
    text = describe(*next(iter(cycles.items())))
    assert text == ("import cycle between 2 modules (pkg.app, pkg.pages): pkg/app.py:1 imports "
                    "pkg.pages -> pkg/pages.py:4 imports pkg.app")


def test_a_longer_cycle_is_named_by_its_shortest_loop(tmp_path):
    package = _write_package(tmp_path, {
        "__init__.py": "",
        "a.py": "import pkg.b\n",
        "b.py": "import pkg.c\n",
        "c.py": "import pkg.a\nimport pkg.b\n",
    })
    cycles = import_cycles(import_graph(package))
    assert set(cycles) == {frozenset({"pkg.a", "pkg.b", "pkg.c"})}
    loop = next(iter(cycles.values()))
    assert [(a.source, a.target) for a in loop] == [
        ("pkg.a", "pkg.b"), ("pkg.b", "pkg.c"), ("pkg.c", "pkg.a")]


def test_a_relative_import_above_the_package_is_refused(tmp_path):
    package = _write_package(tmp_path, {"__init__.py": "", "a.py": "from .. import x\n"})
    with pytest.raises(ValueError, match=r"a\.py:1: relative import beyond the top package"):
        import_graph(package)


def test_an_import_of_one_package_by_another_is_found(tmp_path):
    package = _write_package(tmp_path, {
        "__init__.py": "", "api/__init__.py": "", "cli/__init__.py": "def main(): ...\n",
        "api/asgi.py": "def app():\n    from pkg.cli import main\n",
        "apiary.py": "import pkg.cli\n",  # a name that only starts like the package
    })
    found = imports_between(import_graph(package), "pkg.api", "pkg.cli")
    assert [str(arrow) for arrow in found] == ["pkg/api/asgi.py:2 imports pkg.cli"]
