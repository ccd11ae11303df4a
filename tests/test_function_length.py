"""No function of the package runs over 60 lines of body (issue 20: god functions are split by
step), migrations excepted (a migration is a list of table changes, read top to bottom).

The body is counted from its first statement after the docstring to its last line: a long
signature of keyword-only parameters or a docstring that explains them is not what makes a
function hard to follow. Read with :mod:`ast` from the source, nested functions counted on
their own too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "src" / "adsentinel"
MAX_BODY_LINES = 60


def body_lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement after the docstring to the function's last line."""
    body = function.body
    first = body[0]
    if (len(body) > 1 and isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        first = body[1]
    return (function.end_lineno or function.lineno) - first.lineno + 1


def long_functions(source: str) -> list[tuple[str, int]]:
    """``(name, body lines)`` of the functions of ``source`` over :data:`MAX_BODY_LINES`."""
    return [(node.name, body_lines(node)) for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and body_lines(node) > MAX_BODY_LINES]


def test_no_function_of_the_package_is_over_60_lines():
    found = [f"{path.relative_to(PACKAGE_DIR)}: {name} ({lines} lines)"
             for path in sorted(PACKAGE_DIR.rglob("*.py")) if "migrations" not in path.parts
             for name, lines in long_functions(path.read_text(encoding="utf-8"))]
    assert found == [], "split these by step: " + "; ".join(found)


def test_a_long_body_is_found_and_a_long_docstring_is_not():
    statements = "\n".join(f"    x{i} = {i}" for i in range(61))
    docstring = '    """' + "\n".join(["explains"] * 80) + '"""\n'
    source = (f"def long():\n{statements}\n\n"
              f"def documented():\n{docstring}    return 1\n\n"
              f"def outer():\n    def inner():\n{statements.replace('    ', '        ')}\n"
              "    return inner\n")
    assert long_functions(source) == [("long", 61), ("outer", 63), ("inner", 61)]
