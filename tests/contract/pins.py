"""The versions the contract tests hold the installed libraries to: pyproject.toml's `==` pins."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

__all__ = ["assert_pinned", "pins"]

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _name(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def pins() -> dict[str, str]:
    """Every `name==version` requirement of the project and its extras, by normalised name."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    extras = project.get("optional-dependencies", {}).values()
    requirements = [*project["dependencies"], *(r for extra in extras for r in extra)]
    found = (r.partition(";")[0].split("==") for r in requirements)
    return {_name(parts[0].strip()): parts[1].strip() for parts in found if len(parts) == 2}


def assert_pinned(distribution: str) -> None:
    """The installed `distribution` is the version pyproject.toml pins."""
    expected = pins()[_name(distribution)]
    installed = importlib.metadata.version(distribution)
    assert installed == expected, (
        f"{distribution} {installed} is installed, the contract tests were written for "
        f"{expected}: re-check what tests/contract/ pins before moving the pin"
    )
