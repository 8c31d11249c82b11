"""The RunPod adapter path in-process: jobs/s through its handler, and its cold start.

    python -m bench.adapter --concurrency 64 --sentences 1 --seconds 10   # one JSON line

Settings come from the environment (MODEL_NAMES, BACKEND, ...), as for the worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

from bench.ceilings import SENTENCE

__all__ = ["cold_start"]


async def drive(handler, model: str, concurrency: int, sentences: int, seconds: float) -> dict:
    """Keep `concurrency` native embedding jobs in flight for `seconds`; count answers."""
    job = {"id": "bench", "input": {"model": model, "input": [SENTENCE] * sentences}}
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal failures
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            output = await handler(job)
            latencies.append(time.perf_counter() - began)
            if not isinstance(output, dict) or "data" not in output:
                failures += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    pick = lambda q: round(latencies[int(q * (len(latencies) - 1))] * 1000, 1)  # noqa: E731
    return {
        "jobs_per_s": round(len(latencies) / elapsed, 1),
        "sentences_per_s": round(len(latencies) * sentences / elapsed, 1),
        "p50_ms": pick(0.5),
        "p99_ms": pick(0.99),
        "failures": failures,
    }


def cold_start(env: dict[str, str], model: str) -> float:
    """Seconds from spawning `python -m runpod_adapter --test_input` to its answered job."""
    job = json.dumps({"input": {"model": model, "input": ["cold start"]}})
    began = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runpod_adapter", "--test_input", job],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    answered = None
    for line in proc.stdout:
        if answered is None and "Job result" in line and "embedding" in line:
            answered = time.monotonic() - began
    proc.wait()
    if answered is None:
        raise RuntimeError("the adapter did not answer its test job")
    return round(answered, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64])
    parser.add_argument("--sentences", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    from handlers.compose import build_core
    from handlers.settings import load_settings
    from runpod_adapter.engine_loop import EngineLoop

    settings = load_settings()
    engines = EngineLoop(build_core(settings))
    engines.start()
    model = settings.models[0].served_id
    try:
        results = {}
        for concurrency in args.concurrency:
            asyncio.run(drive(engines.handler, model, concurrency, args.sentences, 1.0))  # warm
            results[concurrency] = asyncio.run(
                drive(engines.handler, model, concurrency, args.sentences, args.seconds)
            )
        print(json.dumps(results))
    finally:
        engines.stop()


if __name__ == "__main__":
    main()
