"""The service reaches each library through its public modules only: no `_private` import."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = {"handlers", "runpod_adapter", "service", "__future__"}


def _imported(path: Path) -> set[str]:
    """The absolute module paths `path` imports, at any depth."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_no_module_imports_a_private_module_of_another_library():
    sources = [ROOT / "service.py", *(ROOT / "handlers").rglob("*.py")]
    sources += (ROOT / "runpod_adapter").rglob("*.py")
    private = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in sources
        for module in _imported(path)
        if module.partition(".")[0] not in OURS
        and any(part.startswith("_") for part in module.split("."))
    }
    assert not private
