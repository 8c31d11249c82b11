"""The workloads users run, side by side: ingestion, queries under ingestion, rerank, images.

    python -m bench.mixed ceilings --model M --reranker R --cache DIR   # one JSON line

(a) ingestion: requests of 16 and 64 chunks of bench/corpus.jsonl (real prose, token lengths
p10 26 / median 63 / p90 163 / max 509); (b) one-sentence queries while (a) runs, their
p50/p99; (c) rerank: one query, 20 and 100 documents of the same corpus; (d) CLIP image
embeddings from data URIs. The ceilings of (a) and (c) are the in-process engines on the
same inputs sorted into length-homogeneous batches: the best a scheduler can do.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import time
from pathlib import Path

import httpx

from bench.ceilings import SENTENCE
from bench.corpus import load
from bench.servers import Server
from bench.wrk import Wrk, run_wrk

__all__ = ["images", "ingestion", "queries_under_ingestion", "rerank"]

CHUNKS = 384  # the chunks (a)'s bodies and its ceiling are made of
INGEST_SIZES = (16, 64)
INGEST_CONCURRENCY = (4, 16)
RERANK_DOCS = (20, 100)
RERANK_CONCURRENCY = 4
IMAGES_PER_REQUEST = 8
IMAGE_CONCURRENCY = 4


def chunks() -> list[str]:
    return load()[:CHUNKS]


def ingestion_bodies(model: str, size: int) -> list[dict]:
    texts = chunks()
    return [{"model": model, "input": texts[i : i + size]} for i in range(0, len(texts), size)]


def rerank_bodies(model: str, docs: int) -> list[dict]:
    texts = load()
    queries = [t for t in texts if len(t) < 100][:8]
    pool = texts[CHUNKS:]
    return [
        {"model": model, "query": q, "documents": pool[i * docs : (i + 1) * docs]}
        for i, q in enumerate(queries)
    ]


def image_bodies(model: str) -> list[dict]:
    """Requests of 8 distinct 640x480 JPEG photos-like images as data URIs."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    uris = []
    for _ in range(IMAGES_PER_REQUEST * 2):
        noise = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
        image = Image.fromarray(noise).resize((640, 480), Image.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        uris.append("data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode())
    half = IMAGES_PER_REQUEST
    return [{"model": model, "input": uris[i : i + half], "modality": "image"} for i in (0, half)]


def settle(url: str, body: dict) -> None:
    """One request, waited for: the server's backlog from the last wrk run has cleared."""
    reply = httpx.post(url, json=body, timeout=900)
    reply.raise_for_status()


def _points(
    servers: list[Server], bodies: list[dict], concurrency: tuple[int, ...], seconds: float
) -> dict[str, dict[int, dict]]:
    rows: dict[str, dict[int, dict]] = {s.name: {} for s in servers}
    for server in servers:  # warm, then clear the queue
        run_wrk(server.url, bodies, 2, 2)
        settle(server.url, bodies[0])
    for c in concurrency:
        for server in servers:
            row = run_wrk(server.url, bodies, c, seconds)
            settle(server.url, bodies[0])
            rows[server.name][c] = row
            print(
                f"  {server.name:>12} c={c:<3} {row['rps']:>7} req/s p50 {row['p50_ms']} "
                f"p99 {row['p99_ms']} ms errors {row['non_2xx'] + row['socket_errors']}",
                flush=True,
            )
    return rows


def _rate(rows: dict[str, dict[int, dict]], name: str, per_request: int) -> None:
    """Items/s from wrk's steady-state request rate (Little's law: see bench.wrk)."""
    for by_c in rows.values():
        for row in by_c.values():
            row[name] = round(row["steady_rps"] * per_request, 1)


def ingestion(servers: list[Server], seconds: float) -> dict:
    """(a): chunks/s per server, requests of 16 and 64 chunks (run twice as long), at 4 and
    16 requests."""
    out = {}
    for size in INGEST_SIZES:
        print(f"ingestion, {size} chunks per request", flush=True)
        bodies = ingestion_bodies(servers[0].model, size)
        out[size] = _points(servers, bodies, INGEST_CONCURRENCY, seconds * (size // 16) ** 0.5)
        _rate(out[size], "chunks_per_s", size)
    return out


def queries_under_ingestion(servers: list[Server], seconds: float) -> dict:
    """(b): one-sentence queries at 2 connections while 16 requests of 16 chunks run."""
    model = servers[0].model
    bodies = ingestion_bodies(model, 16)
    query = {"model": model, "input": [SENTENCE]}
    out = {}
    for server in servers:
        with Wrk(server.url, bodies, 16, seconds + 4) as background:
            time.sleep(2)  # ingestion reaches its steady state first
            queries = run_wrk(server.url, query, 2, seconds)
            ingest = background.result()
        if not queries["requests"]:  # none answered in the window: p99 is past it
            queries.update(p50_ms=seconds * 1000.0, p99_ms=seconds * 1000.0, none_answered=True)
        settle(server.url, bodies[0])
        chunks = round(ingest["steady_rps"] * 16, 1)
        out[server.name] = {"queries": queries, "ingestion_chunks_per_s": chunks}
        print(f"  {server.name:>12} queries under ingestion: {queries}", flush=True)
    return out


def rerank(servers: list[Server], seconds: float) -> dict:
    """(c): documents/s, one query and 20 or 100 documents per request."""
    out = {}
    for docs in RERANK_DOCS:
        print(f"rerank, {docs} documents per request", flush=True)
        bodies = rerank_bodies(servers[0].model, docs)
        out[docs] = _points(servers, bodies, (RERANK_CONCURRENCY,), seconds)
        _rate(out[docs], "docs_per_s", docs)
    return out


def images(servers: list[Server], seconds: float) -> dict:
    """(d): images/s, 8 data-URI JPEGs per request."""
    rows = _points(servers, image_bodies(servers[0].model), (IMAGE_CONCURRENCY,), seconds)
    _rate(rows, "images_per_s", IMAGES_PER_REQUEST)
    return rows


def _items_per_s(run, items: int, seconds: float) -> float:
    run()  # warm
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds or not done:
        run()
        done += items
    return round(done / (time.perf_counter() - began), 1)


def _sorted_batches(items: list, size: int, length) -> list[list]:
    ordered = sorted(items, key=length)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def ceilings(model: str, reranker: str, cache: Path, batch: int, seconds: float) -> dict:
    """Items/s of the in-process engines on (a)'s and (c)'s inputs: sorted into batches of
    `batch` (the ceiling) and, for (a), in arrival order (what FIFO batching gets)."""
    from sentence_transformers import CrossEncoder, SentenceTransformer

    from bench.ceilings import onnx_encoder
    from handlers.engine import onnx_plan as onnx

    texts = chunks()
    st = SentenceTransformer(model, device="cpu")
    tokens = st.tokenizer
    length = lambda t: len(tokens(t, truncation=True, max_length=st.max_seq_length)["input_ids"])  # noqa: E731
    by_length = _sorted_batches(texts, batch, length)
    fifo = [texts[i : i + batch] for i in range(0, len(texts), batch)]

    def each(encode, batches):
        return lambda: [encode(b) for b in batches]

    st_encode = lambda b: st.encode(b, batch_size=len(b))  # noqa: E731
    plan = onnx.plan(model, "ceiling", "auto", cache)
    ort_encode = onnx_encoder(plan.folder, st.max_seq_length)
    out = {
        "ingestion": {
            "torch_sorted": _items_per_s(each(st_encode, by_length), len(texts), seconds),
            "torch_arrival": _items_per_s(each(st_encode, fifo), len(texts), seconds),
            "onnx_sorted": _items_per_s(each(ort_encode, by_length), len(texts), seconds),
        }
    }
    cross = CrossEncoder(reranker, device="cpu")
    out["rerank"] = {}
    for docs in RERANK_DOCS:
        pairs = [(b["query"], d) for b in rerank_bodies("m", docs) for d in b["documents"]]
        pair_length = lambda p: len(p[0]) + len(p[1])  # noqa: E731
        batches = _sorted_batches(pairs, batch, pair_length)
        predict = lambda b: cross.predict(b, batch_size=len(b))  # noqa: E731
        out["rerank"][docs] = _items_per_s(each(predict, batches), len(pairs), seconds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ceil = sub.add_parser("ceilings")
    ceil.add_argument("--model", required=True)
    ceil.add_argument("--reranker", required=True)
    ceil.add_argument("--cache", type=Path, required=True)
    ceil.add_argument("--batch", type=int, default=32)
    ceil.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(json.dumps(ceilings(args.model, args.reranker, args.cache, args.batch, args.seconds)))


if __name__ == "__main__":
    main()
