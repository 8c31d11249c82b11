"""Outputs beyond dense vectors, beside dense on the same chunks: each model served alone (torch)
under wrk against its in-process sentence-transformers 6 ceiling on the same inputs sorted
into length-homogeneous batches.

    python -m bench.beyond ceilings --models DIR   # one JSON line (make bench runs both)

Models (bench/models.py): the bundled MiniLM-L6 (dense), a MiniLM-L6 SPLADE (sparse), a
MiniLM-L6 ColBERT (multi-vector) and a small Qwen3-style causal-LM reranker (rerank).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bench.mixed import _items_per_s, _sorted_batches, chunks, rerank_bodies, settle
from bench.servers import Server
from bench.wrk import run_wrk

__all__ = ["KINDS", "build", "measure"]

TEXTS = 128  # the chunks each embeddings point and its ceiling are made of
PER_REQUEST = 16
DOCS = 20  # the LLM reranker's documents per request (one query)
QUERIES = 4
CONCURRENCY = 8  # embeddings: 128 chunks in flight, as dense ingestion's c=8
RERANK_CONCURRENCY = 4
BATCH = 32
KINDS = ("dense", "sparse", "multi_vector", "llm_rerank")


def build(bundled: str, folder: Path) -> dict[str, Path]:
    """Each kind's model folder, built under `folder` (dense: the bundled model itself)."""
    from bench.models import build_llm_reranker, build_minilm_colbert, build_minilm_splade

    return {
        "dense": Path(bundled),
        "sparse": build_minilm_splade(bundled, folder / "splade"),
        "multi_vector": build_minilm_colbert(bundled, folder / "colbert"),
        "llm_rerank": build_llm_reranker(folder / "llm-reranker"),
    }


def built(bundled: str, folder: Path) -> dict[str, Path]:
    """The folders build() made under `folder`."""
    names = {"sparse": "splade", "multi_vector": "colbert", "llm_rerank": "llm-reranker"}
    return {"dense": Path(bundled)} | {k: folder / n / "model" for k, n in names.items()}


def _bodies(kind: str) -> tuple[str, list[dict], int]:
    """The route, the request bodies (model field set by the caller) and items per body."""
    if kind == "llm_rerank":
        return "/v1/rerank", rerank_bodies("m", DOCS)[:QUERIES], DOCS
    texts = chunks()[:TEXTS]
    bodies = [{"input": texts[i : i + PER_REQUEST]} for i in range(0, TEXTS, PER_REQUEST)]
    return "/v1/embeddings", bodies, PER_REQUEST


def ceilings(models: dict[str, Path], seconds: float) -> dict[str, float]:
    """Items/s of sentence-transformers 6 in process on each kind's inputs, sorted batches."""
    from sentence_transformers import (
        CrossEncoder,
        MultiVectorEncoder,
        SentenceTransformer,
        SparseEncoder,
    )

    texts = chunks()[:TEXTS]
    out = {}
    for kind, cls in (
        ("dense", SentenceTransformer),
        ("sparse", SparseEncoder),
        ("multi_vector", MultiVectorEncoder),
    ):
        model = cls(str(models[kind]), device="cpu")
        length = lambda t, m=model: len(m.tokenizer(t, truncation=True)["input_ids"])  # noqa: E731
        batches = _sorted_batches(texts, BATCH, length)
        encode = lambda m=model, bs=batches: [m.encode(b, batch_size=len(b)) for b in bs]  # noqa: E731
        out[kind] = _items_per_s(encode, len(texts), seconds)
    cross = CrossEncoder(str(models["llm_rerank"]), device="cpu")
    pairs = [(b["query"], d) for b in _bodies("llm_rerank")[1] for d in b["documents"]]
    batches = _sorted_batches(pairs, BATCH, lambda p: len(p[0]) + len(p[1]))
    predict = lambda: [cross.predict(b, batch_size=len(b)) for b in batches]  # noqa: E731
    out["llm_rerank"] = _items_per_s(predict, len(pairs), seconds)
    return out


def measure(bundled: str, folder: Path, ours: list[str], env: dict, seconds: float) -> dict:
    """Each kind: ours (items/s under wrk, p50/p99) against its ceiling, and the ratio.
    `ours` and `env` start our server ({MODEL_NAMES} set here)."""
    models = build(bundled, folder)
    assert models == built(bundled, folder)
    argv = [sys.executable, "-m", "bench.beyond", "ceilings", "--models", str(folder)]
    argv += ["--bundled", bundled, "--seconds", str(max(seconds / 4, 2))]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    ceiling = json.loads(done.stdout.strip().splitlines()[-1])
    out = {}
    for kind in KINDS:
        route, bodies, per_request = _bodies(kind)
        bodies = [{**b, "model": kind} for b in bodies]
        served = {**env, "MODEL_NAMES": str(models[kind]), "SERVED_MODEL_NAMES": kind}
        with Server(kind, ours, served, route, kind, probe=bodies[0]) as server:
            run_wrk(server.url, bodies, 2, 2)  # warm, then clear the queue
            settle(server.url, bodies[0])
            connections = RERANK_CONCURRENCY if kind == "llm_rerank" else CONCURRENCY
            row = run_wrk(server.url, bodies, connections, seconds)
            settle(server.url, bodies[0])
        items = round(row["steady_rps"] * per_request, 1)
        out[kind] = {
            "items_per_s": items,
            "ceiling_items_per_s": ceiling[kind],
            "ratio": round(items / ceiling[kind], 2),
            "p50_ms": row["p50_ms"],
            "p99_ms": row["p99_ms"],
            "errors": row["non_2xx"] + row["socket_errors"],
        }
        print(f"  beyond dense {kind}: {out[kind]}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ceil = sub.add_parser("ceilings")
    ceil.add_argument("--models", type=Path, required=True, help="build()'s folder")
    ceil.add_argument("--bundled", required=True)
    ceil.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(json.dumps(ceilings(built(args.bundled, args.models), args.seconds)))


if __name__ == "__main__":
    main()
