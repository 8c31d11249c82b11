"""GPU benchmark: our service (torch) against stock Infinity on the same GPU, fp16 and fp32.

    bench/gpu.sh           # a machine with one NVIDIA GPU: install, test, benchmark (< 10 min)
    bench/gpu.sh --cpu     # the same steps with the GPU parts skipped: a dry run, anywhere

One-sentence requests (c=1, 64, 256), ingestion (16 and 64 chunks per request), rerank (20 and
100 documents) and images (8 JPEGs per request), each on both servers in turn, per dtype. A
GPU run writes bench/gpu_results.json and BENCHMARKS.md's GPU section (bench/report_gpu.py);
a --cpu run proves the steps on fp32 and CPU, writing bench/gpu_dry_run.json only.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import mixed, report_gpu
from bench.ceilings import SENTENCE
from bench.models import build_clip_b32, build_minilm_reranker
from bench.perf import OURS, ROOT, check_answer, machine, ours_env
from bench.servers import Server
from bench.stock import stock_command
from bench.wrk import ensure_wrk, run_wrk

__all__ = ["main"]

CONCURRENCY = (1, 64, 256)
BUDGET_S = 420.0  # of the 10 minutes, what the benchmark may take after install and tests


def _specs(model: str, served: str, batch: int, dtype: str, device: str, cache: Path) -> dict:
    """Our service and stock Infinity on `device` in `dtype`, the same model and batch size."""
    ours = ours_env({"MODEL_NAMES": model, "SERVED_MODEL_NAMES": served}, "torch", cache)
    ours.update(DTYPES=dtype, DEVICE=device)
    stock = [*stock_command(model, served, batch), "--device", device, "--dtype", dtype]
    return {"ours_torch": (OURS, ours), "stock": (stock, {})}


def _servers(stack: ExitStack, specs: dict, path: str, served: str, probe: dict) -> list[Server]:
    return [
        stack.enter_context(Server(name, argv, env, path, served, probe={"model": served, **probe}))
        for name, (argv, env) in specs.items()
    ]


def _sentences(servers: list[Server], seconds: float) -> dict[str, list[dict]]:
    body = {"model": servers[0].model, "input": [SENTENCE], "encoding_format": "float"}
    rows: dict[str, list[dict]] = {s.name: [] for s in servers}
    for server in servers:
        run_wrk(server.url, body, 16, 2)  # warm
        check_answer(server.url, body)
    for connections in CONCURRENCY:
        for server in servers:
            row = run_wrk(server.url, body, connections, seconds)
            check_answer(server.url, body)
            rows[server.name].append({**row, "concurrency": connections})
            print(f"  {server.name:>12} c={connections:<3} {row['rps']:>7} req/s", flush=True)
    return rows


def run_dtype(
    dtype: str, device: str, spec: Any, models: Path, cache: Path, seconds: float, deadline: float
) -> dict:
    """Every scenario in one dtype; a scenario past the deadline is recorded as skipped."""
    out: dict[str, Any] = {}
    embed, rank = {"input": ["cold start"]}, {"query": "q", "documents": ["d"]}
    scenarios = [
        ("embedder", spec.path, spec.served_id, "/v1/embeddings", embed),
        ("reranker", str(models / "reranker"), "reranker", "/v1/rerank", rank),
        ("clip", str(models / "clip"), "clip", "/v1/embeddings", embed),
    ]
    for name, model, served, path, probe in scenarios:
        if time.monotonic() > deadline:
            out[name] = {"skipped": "over the time budget"}
            continue
        print(f"{dtype} {name}", flush=True)
        specs = _specs(model, served, spec.batch_size, dtype, device, cache)
        with ExitStack() as stack:
            servers = _servers(stack, specs, path, served, probe)
            out[f"{name}_cold_start_s"] = {s.name: round(s.cold_start_s, 1) for s in servers}
            if name == "embedder":
                out["sentences"] = _sentences(servers, seconds)
                out["ingestion"] = mixed.ingestion(servers, seconds)
            elif name == "reranker":
                out["rerank"] = mixed.rerank(servers, seconds)
            else:
                out["images"] = mixed.images(servers, seconds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="skip the GPU: fp32 on CPU, short")
    parser.add_argument("--seconds", type=float, help="per load point (default 4; --cpu 2)")
    args = parser.parse_args()
    device, dtypes = ("cpu", ("float32",)) if args.cpu else ("cuda", ("float16", "float32"))
    seconds = args.seconds or (2.0 if args.cpu else 4.0)
    began = time.monotonic()
    from handlers.settings import load_settings

    spec = load_settings({}).models[0]
    ensure_wrk()
    results: dict[str, Any] = {"model": spec.served_id, "device": device, "machine": machine()}
    results["machine"]["gpu"] = report_gpu.gpu_name() if not args.cpu else None
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as scratch:
        cache = Path(scratch)
        build_minilm_reranker(spec.path, cache / "models" / "reranker")
        build_clip_b32(cache / "models" / "clip")
        deadline = began + BUDGET_S
        results["dtypes"] = {
            dtype: run_dtype(dtype, device, spec, cache / "models", cache, seconds, deadline)
            for dtype in dtypes
        }
    results["seconds"] = round(time.monotonic() - began, 1)
    name = "gpu_dry_run.json" if args.cpu else "gpu_results.json"
    (ROOT / "bench" / name).write_text(json.dumps(results, indent=1))
    section = report_gpu.section(results)
    if not args.cpu:
        report_gpu.insert(section, ROOT / "BENCHMARKS.md")
    print(section)
    print(f"wrote bench/{name} in {results['seconds']} s", flush=True)


if __name__ == "__main__":
    main()
