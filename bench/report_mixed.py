"""BENCHMARKS.md's mixed-length sections (bench/mixed.py): targets, tables, the plot's panel."""

from __future__ import annotations

__all__ = ["NAMES", "mixed_sections", "mixed_targets", "plot_ingestion"]

NAMES = {
    "ours_torch": "ours, torch",
    "ours_optimum": "ours, optimum",
    "stock": "stock Infinity",
    "adapter_torch": "adapter, torch",
    "adapter_optimum": "adapter, optimum",
    "ours_optimum_first_export": "ours, optimum, first start (exports to ONNX)",
}


def _ratio(ours: float, base: float) -> float:
    """ours / base; infinite where the base got nothing done in the window (--quick)."""
    return ours / base if base else float("inf")


def mixed_targets(res: dict) -> list[tuple[str, float, float, str]]:
    """The Performance II targets: ingestion, queries under ingestion, rerank, images."""
    if "ingestion" not in res:
        return []
    ceil, out = res["mixed_ceilings"], []
    ceiling = {"ours_torch": ceil["ingestion"]["torch_sorted"]}
    ceiling["ours_optimum"] = ceil["ingestion"]["onnx_sorted"]
    for size, rows in res["ingestion"].items():
        for name in ("ours_torch", "ours_optimum"):
            for c in ("4", "16"):
                ours, stock = rows[name][c]["chunks_per_s"], rows["stock"][c]["chunks_per_s"]
                what = f"ingestion {size} chunks/request, {NAMES[name]} vs stock, c={c}"
                out.append((what, _ratio(ours, stock), 1.5, "min"))
            what = f"ingestion {size} chunks/request, {NAMES[name]} vs its sorted ceiling, c=16"
            out.append((what, _ratio(rows[name]["16"]["chunks_per_s"], ceiling[name]), 0.8, "min"))
    queries = res["queries_under_ingestion"]
    for name in ("ours_torch", "ours_optimum"):
        ratio = _ratio(queries[name]["queries"]["p99_ms"], queries["stock"]["queries"]["p99_ms"])
        what = f"query p99 under ingestion, {NAMES[name]} vs stock (lower is better)"
        out.append((what, ratio, 0.5, "max"))
    for docs, rows in res["reranker"].items():
        ours, stock = rows["ours_torch"]["4"]["docs_per_s"], rows["stock"]["4"]["docs_per_s"]
        out.append(
            (
                f"rerank {docs} documents, ours vs its sorted ceiling",
                ours / ceil["rerank"][docs],
                0.9,
                "min",
            )
        )
        out.append((f"rerank {docs} documents, ours vs stock", _ratio(ours, stock), 1.2, "min"))
    rows = res["clip"]
    ratio = _ratio(rows["ours_torch"]["4"]["images_per_s"], rows["stock"]["4"]["images_per_s"])
    out.append(("CLIP images from data URIs, ours vs stock", ratio, 1.0, "min"))
    return out


def _cell(row: dict, rate: str) -> str:
    errors = row["non_2xx"] + row["socket_errors"]
    bad = f", {errors} errors" if errors else ""
    return f"{row[rate]:.1f} ({row['p50_ms']:.0f} / {row['p99_ms']:.0f}){bad}"


def mixed_sections(res: dict) -> list[str]:
    """Tables of the mixed-length workloads (bench/mixed.py)."""
    if "ingestion" not in res:
        return []
    ceil = res["mixed_ceilings"]
    ingest = ceil["ingestion"]
    servers = list(next(iter(res["ingestion"].values())))
    lines = [
        "",
        "## Ingestion: mixed-length chunks (bench/corpus.jsonl), chunks/s (p50 / p99 ms)",
        "",
        "Requests of 16 or 64 chunks of real prose, token lengths p10 26 / median 63 / p90 163 "
        "/ max 509 (MiniLM truncates at 256). In-process ceilings on the same 384 chunks, "
        "batches of 32: sentence-transformers sorted by length "
        f"{ingest['torch_sorted']:.1f}, in arrival order {ingest['torch_arrival']:.1f}; raw "
        f"onnxruntime sorted {ingest['onnx_sorted']:.1f}.",
        "",
        "| chunks/request | c | " + " | ".join(NAMES[s] for s in servers) + " |",
        "|---:|---:|" + "---:|" * len(servers),
    ]
    for size, rows in res["ingestion"].items():
        for c in rows[servers[0]]:
            cells = [_cell(rows[s][c], "chunks_per_s") for s in servers]
            lines.append(f"| {size} | {c} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## One-sentence queries (2 connections) while 16 requests of 16 chunks run",
        "",
        "| server | query req/s | query p50 ms | query p99 ms | ingestion chunks/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in res["queries_under_ingestion"].items():
        q = row["queries"]
        at_least = "> " if q.get("none_answered") else ""  # none answered in the window
        lines.append(
            f"| {NAMES[name]} | {q['rps']:.1f} | {at_least}{q['p50_ms']:.0f} | "
            f"{at_least}{q['p99_ms']:.0f} | {row['ingestion_chunks_per_s']:.1f} |"
        )
    lines += [
        "",
        "## Rerank: one query, 20 or 100 documents of the corpus, 4 connections, documents/s",
        "",
        "A MiniLM-L6 cross-encoder (the bundled encoder with a seeded head: the cost of "
        "ms-marco-MiniLM-L-6-v2). Ceiling: sentence-transformers CrossEncoder on the same "
        "pairs sorted by length, batches of 32.",
        "",
        "| documents | ceiling | ours, torch (p50 / p99 ms) | stock Infinity |",
        "|---:|---:|---:|---:|",
    ]
    for docs, rows in res["reranker"].items():
        ours, stock = (
            _cell(rows["ours_torch"]["4"], "docs_per_s"),
            _cell(rows["stock"]["4"], "docs_per_s"),
        )
        lines.append(f"| {docs} | {ceil['rerank'][docs]:.1f} | {ours} | {stock} |")
    rows = res["clip"]
    lines += [
        "",
        "## CLIP image embeddings: 8 data-URI JPEGs (640x480) per request, 4 connections",
        "",
        "A CLIP with ViT-B/32's vision tower (random weights: its cost). Images/s (p50 / p99 ms).",
        "",
        "| ours, torch | stock Infinity |",
        "|---:|---:|",
        f"| {_cell(rows['ours_torch']['4'], 'images_per_s')} "
        f"| {_cell(rows['stock']['4'], 'images_per_s')} |",
    ]
    return lines


def plot_ingestion(ax, res: dict) -> None:
    """Chunks/s of 16-chunk requests against concurrency, with the sorted ceilings."""
    rows = res["ingestion"]["16"]
    for key, label in (
        ("ours_torch", "ours, torch"),
        ("ours_optimum", "ours, optimum"),
        ("stock", "stock Infinity (torch)"),
    ):
        points = sorted((int(c), row["chunks_per_s"]) for c, row in rows[key].items())
        ax.plot(*zip(*points, strict=True), marker="o", label=label)
    ceilings = res["mixed_ceilings"]["ingestion"]
    for key, label, color in (
        ("torch_sorted", "ceiling: torch, sorted", "grey"),
        ("onnx_sorted", "ceiling: onnxruntime, sorted", "black"),
        ("torch_arrival", "torch, arrival order", "lightgrey"),
    ):
        ax.axhline(ceilings[key], linestyle="--", linewidth=1, label=label, color=color)
    ax.set_xticks([4, 16])
    ax.set_xlabel("concurrent requests")
    ax.set_ylabel("chunks/s")
    ax.set_title("ingestion: 16 mixed-length chunks per request")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
