"""BENCHMARKS.md's GPU section, from bench/gpu_results.json (bench/gpu.py writes both)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["END", "START", "block", "gpu_name", "insert", "section"]

START, END = "<!-- gpu:start -->", "<!-- gpu:end -->"
NOT_RUN = (
    "## GPU\n\nNot measured yet: `bench/gpu.sh` (one NVIDIA GPU, under 10 minutes) writes this "
    "section; `bench/gpu.sh --cpu` runs its steps here with the GPU parts skipped.\n"
)


def gpu_name() -> str:
    """The GPU's name and memory as nvidia-smi reports them."""
    query = ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"]
    return subprocess.run(query, capture_output=True, text=True, check=True).stdout.strip()


def _ratio(ours: float | None, stock: float | None) -> str:
    return f"{ours / stock:.2f}×" if ours and stock else "–"


def _rows(run: dict[str, Any]) -> list[tuple[str, float | None, float | None]]:
    """(scenario, ours, stock) in items/s for every point of one dtype's run."""
    rows: list[tuple[str, float | None, float | None]] = []
    by_server = run.get("sentences", {})
    for ours, stock in zip(
        by_server.get("ours_torch", []), by_server.get("stock", []), strict=False
    ):
        rows.append((f"one sentence, c={ours['concurrency']} (req/s)", ours["rps"], stock["rps"]))
    for key, unit, label in (
        ("ingestion", "chunks_per_s", "ingestion, {n} chunks/request, c={c} (chunks/s)"),
        ("rerank", "docs_per_s", "rerank, {n} documents, c={c} (documents/s)"),
    ):
        for n, by in run.get(key, {}).items():
            for c in by.get("stock", {}):
                ours_row, stock_row = by["ours_torch"][c], by["stock"][c]
                rows.append((label.format(n=n, c=c), ours_row[unit], stock_row[unit]))
    images = run.get("images", {})
    for c in images.get("stock", {}):
        ours_row, stock_row = images["ours_torch"][c], images["stock"][c]
        label = f"images, 8 JPEGs/request, c={c} (images/s)"
        rows.append((label, ours_row["images_per_s"], stock_row["images_per_s"]))
    return rows


def section(results: dict[str, Any]) -> str:
    """The GPU section: per dtype, every point's items/s on both servers and their ratio."""
    machine = results["machine"]
    where = machine.get("gpu") or f"CPU only ({machine['cpu']}): a dry run, not GPU figures"
    lines = [
        "## GPU",
        "",
        f"`bench/gpu.sh` on {where}, {machine['date']}, model {results['model']}; our service "
        "(torch) and stock Infinity 0.0.78 on the same device, each point on both in turn; "
        f"{results['seconds']} s in all.",
    ]
    for dtype, run in results["dtypes"].items():
        lines += [
            "",
            f"### {dtype}",
            "",
            "| scenario | ours | stock | ours/stock |",
            "|---|---|---|---|",
        ]
        lines += [f"| {name} | {o} | {s} | {_ratio(o, s)} |" for name, o, s in _rows(run)]
        skipped = [
            name for name, value in run.items() if isinstance(value, dict) and "skipped" in value
        ]
        if skipped:
            lines += ["", f"Skipped (past the time budget): {', '.join(skipped)}."]
    return "\n".join(lines) + "\n"


def block(results: Path) -> str:
    """The GPU section between its markers: from `results` (bench/gpu_results.json) when a
    GPU run wrote it, else a note that it has not run."""
    text = section(json.loads(results.read_text())) if results.is_file() else NOT_RUN
    return f"{START}\n{text}{END}\n"


def insert(text: str, markdown: Path) -> None:
    """Put `text` between the GPU markers of `markdown` (appended with them when absent)."""
    current = markdown.read_text()
    marked = f"{START}\n{text}{END}\n"
    if START in current and END in current:
        head, rest = current.split(START, 1)
        current = head + marked + rest.split(END, 1)[1].lstrip("\n")
    else:
        current = current.rstrip("\n") + "\n\n" + marked
    markdown.write_text(current)
