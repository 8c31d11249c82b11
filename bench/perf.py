"""Side-by-side benchmark: ceilings, our service (torch, optimum), stock Infinity, the adapter.

    make bench                    # or: .venv/bin/python -m bench.perf [--model PATH] [--quick]

One run on one machine, same model (the bundled all-MiniLM-L6-v2 unless --model), load from
wrk on loopback. The three servers run side by side and every load point is measured on
each in turn, so drift of a shared machine hits them alike. Cold starts are measured with
each process alone (best of two). Writes bench/results.json, BENCHMARKS.md and
bench/throughput.png.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench import adapter, audio, beyond, mixed, report
from bench.ceilings import SENTENCE
from bench.models import build_clip_b32, build_minilm_reranker
from bench.servers import Server
from bench.stock import stock_command
from bench.wrk import ensure_wrk, run_wrk

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = (1, 16, 64, 256)
SIZES = (1, 32)
ENCODINGS = ("float", "base64")
OURS = [sys.executable, "-m", "handlers.serve"]


def check_answer(url: str, body: dict) -> None:
    """One request, waited for: the answer must be complete and well-formed.

    Sent before each load point and after each wrk run: the engines keep working on the
    requests wrk abandons when it stops, so this also waits for that backlog to clear
    (the engine queue is first in, first out for equal inputs) before the next point.
    """
    reply = httpx.post(url, json=body, timeout=900)
    reply.raise_for_status()
    data = reply.json()["data"]
    assert len(data) == len(body["input"]), reply.text[:200]
    first = data[0]["embedding"]
    if body["encoding_format"] == "base64":
        assert len(base64.b64decode(first)) % 4 == 0
    else:
        assert all(isinstance(x, float) for x in first[:4])


def load_points(servers: list[Server], seconds: float) -> dict[str, list[dict]]:
    """Every (sentences, encoding, concurrency) point on every server in turn."""
    rows: dict[str, list[dict]] = {s.name: [] for s in servers}
    for size in SIZES:
        for encoding in ENCODINGS:
            body = {"model": servers[0].model, "input": [SENTENCE] * size}
            body["encoding_format"] = encoding
            for server in servers:  # warm connections and batch shapes, then clear the queue
                run_wrk(server.url, body, 16, 2)
                check_answer(server.url, body)
            for connections in CONCURRENCY:
                for server in servers:
                    row = run_wrk(server.url, body, connections, seconds)
                    check_answer(server.url, body)
                    row.update(sentences=size, encoding=encoding, concurrency=connections)
                    row["sentences_per_s"] = round(row["rps"] * size, 1)
                    print(
                        f"  {server.name:>12} n={size:<2} {encoding:<6} c={connections:<3} "
                        f"{row['rps']:>7} req/s p50 {row['p50_ms']} p99 {row['p99_ms']} ms "
                        f"errors {row['non_2xx'] + row['socket_errors']}",
                        flush=True,
                    )
                    rows[server.name].append(row)
    return rows


def overload(model_env: dict, cache: Path, model: str, seconds: float) -> dict:
    """The hostile burst: cap 256 items, 256 connections x 32 sentences, each retrying a
    429 at once (wrk does). Capacity is measured first on the same server at c=4."""
    env = {**ours_env(model_env, "torch", cache), "INFINITY_QUEUE_SIZE": "256"}
    body = {"model": model, "input": [SENTENCE] * 32, "encoding_format": "float"}
    with Server("overload", OURS, env, "/v1/embeddings", model) as server:
        run_wrk(server.url, body, 4, 2)
        check_answer(server.url, body)
        calm = run_wrk(server.url, body, 4, seconds)
        check_answer(server.url, body)
        burst = run_wrk(server.url, body, 256, seconds, statuses=True)
        check_answer(server.url, body)
        models = httpx.get(server.url.replace("/v1/embeddings", "/v1/models")).json()
        stats = models["data"][0]["stats"]
    duration = burst["requests"] / burst["rps"] if burst["rps"] else seconds
    out = {
        "cap": 256,
        "capacity_rps": calm["rps"],
        "goodput_rps": round(burst["ok"] / duration, 1),
        "throttled": burst["throttled"],
        "server_errors": burst["failed"],
        "socket_errors": burst["socket_errors"],
        "peak_admitted_items": stats["peak_admitted_items"],
        "p99_ms": burst["p99_ms"],
    }
    print(f"overload: {out}", flush=True)
    return out


def ours_env(model_env: dict, backend: str, cache: Path) -> dict:
    return {
        **model_env,
        "BACKEND": backend,
        "HF_HOME": str(cache),
        "INFINITY_HOST": "127.0.0.1",
        "INFINITY_PORT": "{port}",
    }


def run_adapter(env: dict, seconds: float) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.adapter",
            "--seconds",
            str(seconds),
            "--concurrency",
            "1",
            "64",
            "256",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def cold_starts(
    specs: dict[str, tuple[list[str], dict]], adapters: dict[str, dict], model: str, rounds: int
) -> dict[str, float]:
    """Spawn to first answered embedding, each process alone; best of `rounds`."""
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, (argv, env) in specs.items():
            with Server(name, argv, env, "/v1/embeddings", model) as server:
                seconds = server.cold_start_s
            best[name] = min(best.get(name, seconds), seconds)
        for name, env in adapters.items():
            seconds = adapter.cold_start(env, model)
            best[name] = min(best.get(name, seconds), seconds)
        print(f"cold starts so far (best): {best}", flush=True)
    return best


def mixed_ceilings(spec, reranker: Path, cache: Path, quick: bool) -> dict:
    argv = [sys.executable, "-m", "bench.mixed", "ceilings", "--model", spec.path]
    argv += ["--reranker", str(reranker), "--cache", str(cache / "onnx-mixed")]
    argv += ["--batch", str(spec.batch_size), "--seconds", "1" if quick else "4"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def other_models(results: dict, folder: Path, cache: Path, batch_size: int, seconds: float) -> None:
    """(c) rerank and (d) images: ours (torch; ONNX serves embedders only) against stock on
    a MiniLM-L6 cross-encoder and a ViT-B/32-sized CLIP, each server alone with its model."""
    for name, scenario, path, probe in (
        ("reranker", mixed.rerank, "/v1/rerank", {"query": "q", "documents": ["d"]}),
        ("clip", mixed.images, "/v1/embeddings", {"input": ["a photo"]}),
    ):
        model = str(folder / name)
        env = ours_env({"MODEL_NAMES": model, "SERVED_MODEL_NAMES": name}, "torch", cache)
        specs = {"ours_torch": (OURS, env), "stock": (stock_command(model, name, batch_size), {})}
        with ExitStack() as stack:
            servers = [
                stack.enter_context(
                    Server(label, argv, env, path, name, probe={"model": name, **probe})
                )
                for label, (argv, env) in specs.items()
            ]
            results[name] = scenario(servers, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder or Hub id (default: the bundled MiniLM)")
    parser.add_argument("--quick", action="store_true", help="short runs, to try the bench")
    args = parser.parse_args()
    seconds = 3 if args.quick else 12

    from handlers.settings import load_settings

    settings = load_settings({"MODEL_NAMES": args.model} if args.model else {})
    spec = settings.models[0]
    model_env = {"MODEL_NAMES": spec.path, "SERVED_MODEL_NAMES": spec.served_id}
    ensure_wrk()
    stock = stock_command(spec.path, spec.served_id, spec.batch_size)  # installs it once
    results: dict = {"model": spec.served_id, "seconds_per_point": seconds, "machine": machine()}
    mixed_seconds = 5 if args.quick else 20
    with tempfile.TemporaryDirectory(prefix="bench-hf-") as scratch:
        cache = Path(scratch)
        models = cache / "models"
        build_minilm_reranker(spec.path, models / "reranker")
        build_clip_b32(models / "clip")
        print("ceilings (in-process)", flush=True)
        results["ceilings"] = json.loads(
            subprocess.run(
                [sys.executable, "-m", "bench.ceilings", "--model", spec.path]
                + ["--served-id", spec.served_id, "--cache", str(cache / "onnx")]
                + ["--seconds", "1" if args.quick else "3"],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        print(json.dumps(results["ceilings"]), flush=True)

        specs = {
            "ours_torch": (OURS, ours_env(model_env, "torch", cache)),
            "ours_optimum": (OURS, ours_env(model_env, "optimum", cache)),
            "stock": (stock, {}),
        }
        adapters = {
            f"adapter_{b}": {**model_env, "BACKEND": b, "HF_HOME": str(cache)}
            for b in ("torch", "optimum")
        }
        results["cold_start_s"] = cold_starts(
            specs, adapters, spec.served_id, 1 if args.quick else 2
        )
        with tempfile.TemporaryDirectory(prefix="bench-empty-") as empty:
            env = ours_env(model_env, "optimum", Path(empty))
            with Server("first", OURS, env, "/v1/embeddings", spec.served_id) as first:
                results["cold_start_s"]["ours_optimum_first_export"] = first.cold_start_s

        with ExitStack() as stack:
            servers = [
                stack.enter_context(Server(name, argv, env, "/v1/embeddings", spec.served_id))
                for name, (argv, env) in specs.items()
            ]
            results["load"] = load_points(servers, seconds)
            results["peak_rss_mb"] = {s.name: round(s.peak_rss_mb) for s in servers}
            results["ingestion"] = mixed.ingestion(servers, mixed_seconds)
            results["queries_under_ingestion"] = mixed.queries_under_ingestion(
                servers, mixed_seconds
            )

        print("mixed-length ceilings (in-process)", flush=True)
        results["mixed_ceilings"] = mixed_ceilings(spec, models / "reranker", cache, args.quick)
        print(json.dumps(results["mixed_ceilings"]), flush=True)
        other_models(results, models, cache, spec.batch_size, mixed_seconds)
        print("outputs beyond dense (each model alone)", flush=True)
        env = ours_env({}, "torch", cache)
        results["beyond"] = beyond.measure(spec.path, models / "beyond", OURS, env, mixed_seconds)
        results["audio"] = audio.measure(OURS, env, models / "clap", mixed_seconds)

        results["overload"] = overload(model_env, cache, spec.served_id, seconds)
        results["adapter"] = {}
        for backend in ("torch", "optimum"):
            results["adapter"][backend] = run_adapter(adapters[f"adapter_{backend}"], seconds)
            print(f"adapter {backend}: {results['adapter'][backend]}", flush=True)

    results = json.loads(json.dumps(results))  # the keys as the saved file has them
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=1))
    report.write(results, ROOT / "BENCHMARKS.md", ROOT / "bench" / "throughput.png")
    print("wrote BENCHMARKS.md, bench/results.json and bench/throughput.png")


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }


if __name__ == "__main__":
    main()
