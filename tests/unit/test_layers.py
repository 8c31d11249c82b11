"""The layers hold: the request core reaches the engine only through the seam's types."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (deferred imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_core_imports_nothing_of_the_engine_but_the_seam():
    reached = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "handlers" / "core").rglob("*.py"))
        for name in _imports(path)
        if name.startswith("handlers.engine") and not name.startswith("handlers.engine.seam")
    }
    assert not reached


def test_the_seam_imports_no_engine_module_at_run_time():
    """The seam is a leaf: importing it loads no scheduler, tokenizer or model code."""
    tree = ast.parse((ROOT / "handlers" / "engine" / "seam.py").read_text())
    run_time = [
        node.module
        for node in tree.body  # module level only: TYPE_CHECKING blocks are not run
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("handlers.engine")
    ]
    assert run_time == []


def test_every_module_of_the_service_and_its_tools_is_under_300_lines():
    """handlers/, runpod_adapter/, service.py, bench/ and the tests' support modules (the
    test files themselves aside)."""
    modules = [
        *(ROOT / "handlers").rglob("*.py"),
        *(ROOT / "runpod_adapter").rglob("*.py"),
        ROOT / "service.py",
        *(ROOT / "bench").glob("*.py"),
        *(p for p in (ROOT / "tests").rglob("*.py") if not p.name.startswith("test_")),
    ]
    long = {
        str(path.relative_to(ROOT)): lines
        for path in modules
        if (lines := len(path.read_text().splitlines())) >= 300
    }
    assert not long
