"""BENCHMARKS.md's memory section, from bench/soak.json (make soak writes it)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["section"]


def section(path: Path) -> str:
    """BENCHMARKS.md's memory section from `path` (bench/soak.json), or "" before a run."""
    if not path.is_file():
        return ""
    lines = [
        "## Memory under load (`make soak`)",
        "",
        "wrk, 8 connections, 16 chunks of the corpus per request, RSS of the server's process "
        "tree every 30 s; the ceiling is RSS at the end over RSS after the first 2 minutes.",
        "",
        "| backend | minutes | requests | idle MB | after 2 min MB | end MB | max MB | ratio "
        "| met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|:-:|",
    ]
    for backend, row in json.loads(path.read_text()).items():
        peak = max(mb for _, mb in row["samples"])
        lines.append(
            f"| {backend} | {row['minutes']:g} | {row['requests']} | {row['idle_mb']:.0f} | "
            f"{row['settled_mb']:.0f} | {row['end_mb']:.0f} | {peak:.0f} | {row['ratio']:.3f}x "
            f"(≤ {row['ceiling']}x) | {'yes' if row['met'] else '**no**'} |"
        )
    return "\n".join(lines) + "\n"
