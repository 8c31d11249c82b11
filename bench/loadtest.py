"""Bounded load test: N requests at concurrency C; counts answers, 2xx/429/5xx, lost, latency.

    .venv/bin/python -m bench.loadtest --requests 20000 --concurrency 256

Starts the service itself on a free loopback port (tiny test embedder by default, or the
bundled MiniLM with --bundled) unless --url is given. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx


@dataclass
class LoadResult:
    sent: int = 0
    answered: int = 0
    ok: int = 0
    throttled: int = 0
    server_errors: int = 0
    other: int = 0
    refused: int = 0  # connection refused before the request was accepted
    dropped: int = 0  # accepted, then the connection died without an answer
    errors: dict[str, int] = field(default_factory=dict)  # transport errors by type
    latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def lost(self) -> int:
        return self.sent - self.answered

    def summary(self) -> dict[str, float | int]:
        lat = sorted(self.latencies) or [0.0]
        pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1)  # noqa: E731
        out = {k: v for k, v in asdict(self).items() if k != "latencies"}
        return {**out, "lost": self.lost, "p50_ms": pick(0.50), "p99_ms": pick(0.99)}


async def run_load(
    url: str,
    body: dict,
    total: int,
    concurrency: int,
    headers: dict | None = None,
    stop: asyncio.Event | None = None,
) -> LoadResult:
    """Send up to `total` POSTs of `body` to `url` with `concurrency` workers; never retries.
    Once `stop` is set no new request is sent (as a load balancer stops routing to a
    replica whose readiness probe fails)."""
    result = LoadResult()
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=120, headers=headers) as client:

        async def worker() -> None:
            for _ in counter:
                if stop is not None and stop.is_set():
                    return
                result.sent += 1
                began = time.perf_counter()
                try:
                    response = await client.post(url, json=body)
                except httpx.ConnectError:
                    result.refused += 1
                    continue
                except httpx.TransportError as exc:
                    result.dropped += 1
                    name = type(exc).__name__
                    result.errors[name] = result.errors.get(name, 0) + 1
                    continue
                result.answered += 1
                result.latencies.append(time.perf_counter() - began)
                status = response.status_code
                if status < 300:
                    result.ok += 1
                elif status == 429:
                    result.throttled += 1
                elif status >= 500:
                    result.server_errors += 1
                else:
                    result.other += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result


async def watch_readiness(base_url: str, stop: asyncio.Event, every: float = 0.1) -> None:
    """Set `stop` once GET /readyz stops answering 200 (a load balancer's readiness probe)."""
    async with httpx.AsyncClient(timeout=2) as client:
        while not stop.is_set():
            try:
                ready = (await client.get(f"{base_url}/readyz")).status_code == 200
            except httpx.HTTPError:
                ready = False
            if not ready:
                stop.set()
            await asyncio.sleep(every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--url", help="an already running service (default: start one)")
    parser.add_argument("--bundled", action="store_true", help="serve the bundled MiniLM")
    args = parser.parse_args()

    from bench.servers import tree_rss_mb
    from tests.servers import ServiceProcess
    from tests.tiny_models import build_bert_embedder

    model = "sentence-transformers/all-MiniLM-L6-v2"
    env: dict[str, str] = {}
    if not args.bundled and not args.url:
        folder = build_bert_embedder(Path(tempfile.mkdtemp()) / "bert")
        model, env = "tiny/bert", {"MODEL_NAMES": str(folder), "SERVED_MODEL_NAMES": "tiny/bert"}
    body = {"model": model, "input": "A short sentence to embed."}
    if args.url:
        result = asyncio.run(
            run_load(f"{args.url}/v1/embeddings", body, args.requests, args.concurrency)
        )
        print(json.dumps(result.summary(), indent=2))
        return
    with ServiceProcess(env) as server:
        before = round(tree_rss_mb(server.proc.pid), 1)
        began = time.perf_counter()
        result = asyncio.run(
            run_load(f"{server.url}/v1/embeddings", body, args.requests, args.concurrency)
        )
        elapsed = time.perf_counter() - began
        after = round(tree_rss_mb(server.proc.pid), 1)
    report = {
        **result.summary(),
        "concurrency": args.concurrency,
        "seconds": round(elapsed, 1),
        "requests_per_s": round(result.answered / elapsed, 1),
        "startup_s": round(server.startup_seconds, 1),
        "rss_before_mb": before,
        "rss_after_mb": after,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
