"""The import direction of DESIGN.md §3: no module of a lower layer imports a higher one.

Layers, highest first: cli → serve / forget / bench / report → unlearn / eval / train / chat →
model / data → ledger → errors. Imports inside a function count as much as those at the top
(a lazy import is still a dependency); imports only for type checking do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import lethe

SRC = Path(lethe.__file__).parent
LAYERS = [
    {"cli", "__main__"},
    {"serve", "forget", "bench", "report", "demo"},
    {"unlearn", "eval", "train", "chat"},
    {"model", "data"},
    {"ledger", "workspace", "registry"},
    {"errors", "digests", "killpoints", "threads", "__init__"},
]
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "lethe" and len(parts) > 1 else None


def _runtime_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, module) of every import not under ``if TYPE_CHECKING:``."""
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(child) for statement in node.body for child in ast.walk(statement))
    found = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names if node.module == "lethe")
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def test_every_package_has_a_layer():
    packages = {path.name for path in SRC.iterdir() if (path / "__init__.py").is_file()}
    modules = {path.stem for path in SRC.glob("*.py")}
    assert (packages | modules) - set(RANK) == set()


def test_no_lower_layer_imports_a_higher_one():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC)
        own = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        for line, module in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            target = _package(module)
            if target is None or target == own or target not in RANK:
                continue
            if RANK[target] < RANK[own]:
                offenders.append(f"{relative}:{line} ({own}) imports {module} ({target})")
    assert offenders == [], "\n".join(offenders)
