"""The forget workflow sits above train, unlearn and eval: they never import it, and no
module outside the forget strategies asks whether a method is called `exact`."""

from __future__ import annotations

import ast
from pathlib import Path

import lethe

SRC = Path(lethe.__file__).parent
BELOW_FORGET = ("train", "unlearn", "eval", "chat", "model", "data", "ledger")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_lower_layers_never_import_the_forget_package():
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for package in BELOW_FORGET
        for path in sorted((SRC / package).rglob("*.py"))
        for name in _imports(path)
        if name == "lethe.forget" or name.startswith("lethe.forget.")
    ]
    assert offenders == []


def test_no_method_name_is_tested_outside_a_registry():
    """`method == "exact"` / `!= "impact_ga"` style checks: what a method needs is declared on it."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
                values = [node.left, *node.comparators]
                if any(isinstance(v, ast.Constant) and v.value in ("exact", "impact_ga") for v in values):
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []
