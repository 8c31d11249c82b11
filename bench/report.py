"""Turn bench/results.json into BENCHMARKS.md (tables, ratios against targets) and a PNG plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench import report_audio, report_beyond, report_gpu, report_soak
from bench.report_mixed import NAMES, mixed_sections, mixed_targets, plot_ingestion

__all__ = ["write"]


def _row(rows: list[dict], size: int, encoding: str, concurrency: int) -> dict:
    return next(
        r
        for r in rows
        if (r["sentences"], r["encoding"], r["concurrency"]) == (size, encoding, concurrency)
    )


def targets(res: dict) -> list[tuple[str, float, float, bool]]:
    """(what, measured ratio, target, met) for every target of the scheduler issue."""
    ceil, load, cold, rss = res["ceilings"], res["load"], res["cold_start_s"], res["peak_rss_mb"]
    torch_rows, onnx_rows, stock = load["ours_torch"], load["ours_optimum"], load["stock"]

    def rps(rows: list[dict], c: int) -> float:
        return _row(rows, 1, "float", c)["rps"]

    out = [
        (
            "optimum req/s vs raw onnxruntime fp32 ceiling, c=64",
            rps(onnx_rows, 64) / ceil["onnx_fp32"]["sps"],
            0.8,
            "min",
        ),
        (
            "optimum req/s vs raw onnxruntime fp32 ceiling, c=256",
            rps(onnx_rows, 256) / ceil["onnx_fp32"]["sps"],
            0.75,
            "min",
        ),
        ("optimum req/s vs stock (torch), c=64", rps(onnx_rows, 64) / rps(stock, 64), 1.6, "min"),
    ]
    for c in (64, 256):
        out.append(
            (
                f"torch req/s vs sentence-transformers ceiling, c={c}",
                rps(torch_rows, c) / ceil["torch"]["sps"],
                0.7,
                "min",
            )
        )
    out.append(("torch req/s vs stock, c=64", rps(torch_rows, 64) / rps(stock, 64), 1.15, "min"))
    for c in (64, 256):
        ours, base = _row(torch_rows, 1, "float", c), _row(stock, 1, "float", c)
        out.append(
            (
                f"torch p99 vs stock p99, c={c} (lower is better)",
                ours["p99_ms"] / base["p99_ms"],
                1.0,
                "max",
            )
        )
    for backend, key in (("torch", "torch"), ("optimum", "onnx_fp32")):
        best = max(v["sentences_per_s"] for v in res["adapter"][backend].values())
        out.append(
            (
                f"adapter ({backend}) jobs/s vs its ceiling, best concurrency",
                best / ceil[key]["sps"],
                0.9,
                "min",
            )
        )
    over = res["overload"]
    out.append(
        (
            "overload: peak admitted items vs cap (lower is better)",
            over["peak_admitted_items"] / over["cap"],
            1.0,
            "max",
        )
    )
    out.append(
        (
            "overload: goodput vs capacity at c=4",
            over["goodput_rps"] / over["capacity_rps"],
            0.8,
            "min",
        )
    )
    for name, limit in (
        ("ours_torch", 1.0),
        ("ours_optimum", 1.0),
        ("adapter_torch", 0.8),
        ("adapter_optimum", 0.8),
    ):
        out.append(
            (
                f"cold start {NAMES[name]} vs stock (lower is better)",
                cold[name] / cold["stock"],
                limit,
                "max",
            )
        )
    for name in ("ours_torch", "ours_optimum"):
        out.append(
            (
                f"peak RSS under load {NAMES[name]} vs stock (lower is better)",
                rss[name] / rss["stock"],
                1.2,
                "max",
            )
        )
    out += mixed_targets(res) + report_beyond.targets(res) + report_audio.targets(res)
    return [
        (what, round(r, 2), t, (r <= t) if kind == "max" else (r >= t)) for what, r, t, kind in out
    ]


def markdown(res: dict) -> str:
    m, ceil = res["machine"], res["ceilings"]
    servers = list(res["load"])
    lines = [
        "# Benchmarks",
        "",
        f"One run of `make bench` on {m['date']}: {m['cpu']}, {m['cores']} cores, no GPU, "
        f"Python {m['python']}; model `{res['model']}`; load from `wrk` on loopback, "
        f"{res['seconds_per_point']} s per point (one wrk thread); the three servers run "
        "side by side and each point is measured on each in turn, and each point starts "
        "with an empty queue. Short sentence: 13 words. Ratios are from this one run; the "
        "machine is shared and noisy (repeated runs of one point vary by about ±15%), so "
        "compare within the run.",
        "",
        "## Targets",
        "",
        "| ratio | measured | target | met |",
        "|---|---:|---:|:-:|",
    ]
    for what, ratio, target, met in targets(res):
        lines.append(f"| {what} | {ratio:.2f}x | {target:.2f}x | {'yes' if met else '**no**'} |")
    lines += [
        "",
        "## Ceilings (in-process, best batch size)",
        "",
        "| engine | sentences/s | best batch | cosine to torch (mean / min) |",
        "|---|---:|---:|---|",
    ]
    for key, name in (
        ("torch", "sentence-transformers encode (torch)"),
        ("onnx_fp32", "raw onnxruntime fp32"),
        ("onnx_int8", "raw onnxruntime int8"),
    ):
        c = ceil[key]
        cos = f"{c['cosine']['mean']:.4f} / {c['cosine']['min']:.4f}" if "cosine" in c else "-"
        lines.append(f"| {name} | {c['sps']:.0f} | {c['best_batch']} | {cos} |")
    lines += ["", "## HTTP `/v1/embeddings`: requests/s (p50 / p99 ms)", ""]
    lines.append("| sentences | encoding | c | " + " | ".join(NAMES[s] for s in servers) + " |")
    lines.append("|---:|---|---:|" + "---:|" * len(servers))
    for row in res["load"]["ours_torch"]:
        key = (row["sentences"], row["encoding"], row["concurrency"])
        cells = []
        for s in servers:
            r = _row(res["load"][s], *key)
            errors = r["non_2xx"] + r["socket_errors"]
            bad = f", {errors} errors" if errors else ""
            cells.append(f"{r['rps']:.1f} ({r['p50_ms']:.0f} / {r['p99_ms']:.0f}){bad}")
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + " |")
    over = res["overload"]
    lines += [
        "",
        "## Overload (cap 256 items, 256 connections x 32 sentences, 429s retried at once)",
        "",
        "| capacity at c=4 req/s | goodput req/s | 429s | 5xx | socket errors | peak admitted "
        "items | p99 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {over['capacity_rps']} | {over['goodput_rps']} | {over['throttled']} | "
        f"{over['server_errors']} | {over['socket_errors']} | {over['peak_admitted_items']} | "
        f"{over['p99_ms']:.0f} |",
        "",
        "## RunPod adapter in-process (one sentence per job, through its handler)",
        "",
        "| backend | concurrency | jobs/s | p50 / p99 ms |",
        "|---|---:|---:|---|",
    ]
    for backend, data in res["adapter"].items():
        for c, r in data.items():
            lines.append(
                f"| {backend} | {c} | {r['jobs_per_s']:.0f} | "
                f"{r['p50_ms']:.0f} / {r['p99_ms']:.0f} |"
            )
    lines += [
        "",
        "## Cold start (spawn to first answered embedding, best of the runs) and peak RSS",
        "",
        "| process | cold start s | peak RSS MB under load (all processes) |",
        "|---|---:|---:|",
    ]
    for name, seconds in res["cold_start_s"].items():
        rss = res["peak_rss_mb"].get(name, "-")
        lines.append(f"| {NAMES[name]} | {seconds:.1f} | {rss} |")
    lines += mixed_sections(res) + report_beyond.section(res) + report_audio.section(res)
    lines += ["", "![throughput vs concurrency](bench/throughput.png)", ""]
    return "\n".join(lines)


def plot(res: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mixed = "ingestion" in res
    fig, axes = plt.subplots(1, 3 if mixed else 2, figsize=(18 if mixed else 12, 4.5))
    series = (
        ("ours_torch", "ours, torch"),
        ("ours_optimum", "ours, optimum"),
        ("stock", "stock Infinity (torch)"),
    )
    ceilings = (("torch", "ceiling: torch encode"), ("onnx_fp32", "ceiling: onnxruntime fp32"))
    for ax, size in zip(axes, (1, 32), strict=False):
        for key, label in series:
            rows = [
                r for r in res["load"][key] if r["sentences"] == size and r["encoding"] == "float"
            ]
            ax.plot(
                [r["concurrency"] for r in rows],
                [r["sentences_per_s"] for r in rows],
                marker="o",
                label=label,
            )
        for key, label in ceilings:
            ax.axhline(
                res["ceilings"][key]["sps"],
                linestyle="--",
                linewidth=1,
                label=label,
                color="grey" if key == "torch" else "black",
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 16, 64, 256], ["1", "16", "64", "256"])
        ax.set_xlabel("concurrent connections")
        ax.set_ylabel("sentences/s")
        ax.set_title(f"{size} sentence{'s' if size > 1 else ''} per request (float)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if mixed:
        plot_ingestion(axes[2], res)
    fig.suptitle(f"/v1/embeddings throughput, {res['model']}, {res['machine']['cores']} CPU cores")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def images_section(images: dict) -> str:
    """The `make image-test` figures (bench/images.json, written by tests/image_check.py)."""
    lines = [
        "## Images",
        "",
        f"One run of `make image-test` on {images['date']} ({images['machine']}): each image "
        "built with buildah from the repository root, on a local stand-in of "
        "`python:3.11-slim`, then smoke-tested (docs/images.md).",
        "",
        "| image | size GB | target GB | build s | /readyz after s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in images["images"].items():
        ready = row.get("ready_s")
        lines.append(
            f"| `{name}` | {row['size_gb']:.2f} | {row['target_gb']:.1f} | {row['build_s']:.0f} "
            f"| {'-' if ready is None else f'{ready:.1f}'} |"
        )
    return "\n".join([*lines, ""])


def render(res: dict, images: Path) -> str:
    """BENCHMARKS.md from `res`, with the sections of `images` (bench/images.json), soak.json
    and gpu_results.json beside it where they exist (the GPU one says when it has not run)."""
    text = markdown(res)
    if images.is_file():
        text += "\n" + images_section(json.loads(images.read_text()))
    if memory := report_soak.section(images.parent / "soak.json"):
        text += "\n" + memory
    return text + "\n" + report_gpu.block(images.parent / "gpu_results.json")


def write(res: dict, markdown_path: Path, png_path: Path) -> None:
    markdown_path.write_text(render(res, png_path.parent / "images.json"))
    plot(res, png_path)


if __name__ == "__main__":  # re-render from a saved results.json
    root = Path(__file__).resolve().parent.parent
    write(
        json.loads((root / "bench" / "results.json").read_text()),
        root / "BENCHMARKS.md",
        root / "bench" / "throughput.png",
    )
    sys.exit(0)
