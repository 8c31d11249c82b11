"""Infinity is reached through one adapter: handlers/engine/infinity.py alone imports it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports_infinity(path: Path) -> bool:
    """Whether `path` imports infinity_emb or a module of it, at any depth."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules = [node.module or ""]
        else:
            continue
        if any(module.partition(".")[0] == "infinity_emb" for module in modules):
            return True
    return False


def test_only_the_adapter_imports_infinity_emb():
    sources = [ROOT / "service.py", *(ROOT / "handlers").rglob("*.py")]
    sources += (ROOT / "runpod_adapter").rglob("*.py")
    importers = {str(path.relative_to(ROOT)) for path in sources if _imports_infinity(path)}
    assert importers == {"handlers/engine/infinity.py"}
