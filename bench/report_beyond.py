"""BENCHMARKS.md's section on outputs beyond dense vectors, and its targets (bench.beyond)."""

from __future__ import annotations

__all__ = ["section", "targets"]

TARGET = 0.9  # of the sorted in-process ceiling, as for dense ingestion
LABELS = {
    "dense": "dense (MiniLM-L6), /v1/embeddings",
    "sparse": "sparse (MiniLM-L6 SPLADE), /v1/embeddings",
    "multi_vector": "multi-vector (MiniLM-L6 ColBERT), /v1/embeddings",
    "llm_rerank": "LLM reranker (Qwen3-style, 4 layers), /v1/rerank",
}


def targets(res: dict) -> list[tuple[str, float, float, str]]:
    """(what, ratio, target, kind) per kind measured."""
    return [
        (f"{LABELS[kind]} items/s vs its sorted in-process ceiling", row["ratio"], TARGET, "min")
        for kind, row in res.get("beyond", {}).items()
    ]


def section(res: dict) -> list[str]:
    """The section's lines, or none before a run measured it."""
    if "beyond" not in res:
        return []
    lines = [
        "",
        "## Outputs beyond dense vectors (each model alone, torch)",
        "",
        "Requests of 16 chunks of the corpus (128 in turn) at 8 connections, or of one query "
        "and 20 documents at 4; the ceiling is sentence-transformers 6 in process (`encode`, "
        "`CrossEncoder.predict`) on the same inputs sorted into batches of 32.",
        "",
        "| model | ours items/s | ceiling items/s | ratio | p50 / p99 ms |",
        "|---|---:|---:|---:|---|",
    ]
    for kind, row in res["beyond"].items():
        errors = f", {row['errors']} errors" if row["errors"] else ""
        lines.append(
            f"| {LABELS[kind]} | {row['items_per_s']} | {row['ceiling_items_per_s']} | "
            f"{row['ratio']:.2f}x | {row['p50_ms']:.0f} / {row['p99_ms']:.0f}{errors} |"
        )
    return lines
