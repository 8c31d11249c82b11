"""Soak: memory under mixed-length load, sampled; the RSS after the run against the RSS after
its first 2 minutes, with a ceiling the run reports as met or missed.

    make soak                                  # 30 minutes on each backend (torch, optimum)
    .venv/bin/python -m bench.soak --minutes 5 --backend torch

Load: wrk, 8 connections, requests of 16 chunks of real text (bench/corpus.jsonl: token
lengths p10 17, median 56, p90 216), for the whole run; the RSS of the server's process tree
every 30 s. Writes bench/soak.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import mixed
from bench.perf import OURS, ROOT, ours_env
from bench.servers import Server, tree_rss_mb
from bench.wrk import Wrk

__all__ = ["CEILING", "soak"]

CEILING = 1.05
"""RSS at the end over RSS after the first 2 minutes, at most (Performance III's target)."""
SAMPLE_S = 30.0
SETTLED_S = 120.0


def soak(backend: str, minutes: float, cache: Path) -> dict[str, Any]:
    """One server under the soak load for `minutes`: its RSS samples and the verdict."""
    from handlers.settings import load_settings

    spec = load_settings({}).models[0]
    env = ours_env({"MODEL_NAMES": spec.path, "SERVED_MODEL_NAMES": spec.served_id}, backend, cache)
    bodies = mixed.ingestion_bodies(spec.served_id, 16)
    seconds = minutes * 60
    samples: list[tuple[float, float]] = []
    with Server(f"soak-{backend}", OURS, env, "/v1/embeddings", spec.served_id) as server:
        samples.append((0.0, round(tree_rss_mb(server.proc.pid), 1)))
        with Wrk(server.url, bodies, 8, seconds) as load:
            began = time.monotonic()
            while (elapsed := time.monotonic() - began) < seconds:
                time.sleep(min(SAMPLE_S, max(seconds - elapsed, 0.1)))
                samples.append(
                    (round(time.monotonic() - began), round(tree_rss_mb(server.proc.pid), 1))
                )
                print(
                    f"  {backend} {samples[-1][0]:>5.0f} s  RSS {samples[-1][1]:.0f} MB", flush=True
                )
            result = load.result()
    settled = next((mb for t, mb in samples if t >= SETTLED_S), samples[-1][1])
    ratio = samples[-1][1] / settled
    return {
        "minutes": minutes,
        "idle_mb": samples[0][1],
        "settled_mb": settled,
        "end_mb": samples[-1][1],
        "ratio": round(ratio, 3),
        "ceiling": CEILING,
        "met": ratio <= CEILING,
        "requests": result["requests"],
        "errors": result["non_2xx"] + result["socket_errors"],
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--backend", choices=("torch", "optimum"), action="append")
    args = parser.parse_args()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as cache:
        for backend in args.backend or ["torch", "optimum"]:
            out[backend] = soak(backend, args.minutes, Path(cache))
            row = out[backend]
            verdict = "met" if row["met"] else "MISSED"
            print(
                f"{backend}: idle {row['idle_mb']:.0f} MB, after 2 min {row['settled_mb']:.0f} MB, "
                f"end {row['end_mb']:.0f} MB: {row['ratio']:.3f}x (ceiling {CEILING}x) {verdict}",
                flush=True,
            )
    path = ROOT / "bench" / "soak.json"  # each backend's last run, whichever ran it
    kept = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**kept, **out}, indent=1))


if __name__ == "__main__":
    main()
