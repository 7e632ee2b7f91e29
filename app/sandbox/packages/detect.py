"""Which top-level modules a piece of code imports (parsed, never grepped), and which one a failed
run was missing (the runtime fallback)."""

from __future__ import annotations

import ast
import re

_DYNAMIC_IMPORTERS = {"import_module", "__import__"}
# The last line of a traceback for a missing top-level module. The code can print anything, so this
# only ever leads to installing an APPROVED package, which the code could have imported anyway.
_MISSING = re.compile(r"^ModuleNotFoundError: No module named '([A-Za-z_][A-Za-z0-9_.]*)'\s*$")


def imports_in(code: str) -> set[str]:
    """Top-level names of every absolute import anywhere in the code (functions, try blocks too),
    plus `importlib.import_module("x")` / `__import__("x")` with a literal name."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()  # the run reports the syntax error itself
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and _is_dynamic_import(node.func)
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            name = node.args[0].value
            if isinstance(name, str) and name and not name.startswith("."):
                found.add(name.split(".")[0])
    return {name for name in found if name.isidentifier()}


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in _DYNAMIC_IMPORTERS
    return isinstance(func, ast.Attribute) and func.attr in _DYNAMIC_IMPORTERS


def missing_module(stderr: str) -> str | None:
    """The top-level module a run died on, from the final line of its traceback.

    A dotted name means the parent exists and only a submodule is missing: installing cannot help.
    """
    lines = [line for line in stderr.splitlines() if line.strip()]
    if not lines:
        return None
    match = _MISSING.match(lines[-1].strip())
    if not match or "." in match.group(1):
        return None
    return match.group(1)
