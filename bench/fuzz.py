"""Bounded schemathesis fuzz run against the service's own /v1 OpenAPI document.

    .venv/bin/python -m bench.fuzz --max-examples 500

Starts the service on a free loopback port with the tiny test models unless --url is given.
Every check runs except `positive_data_acceptance`: some schema-valid requests are rightly
refused for reasons OpenAPI cannot express (an image request to a text-only model, an image
item that is not an image), and those answers are documented 4xx errors.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXCLUDED_CHECKS = "positive_data_acceptance"


def run_schemathesis(
    base_url: str, max_examples: int, seed: int = 1, extra: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the schemathesis CLI against every operation of the document (its paths are the
    real ones, /v1 and /v2 included); returns the finished process."""
    cli = Path(sys.executable).with_name("schemathesis")
    return subprocess.run(
        [
            str(cli),
            "run",
            f"{base_url}/v1/openapi.json",
            "--url",
            base_url,
            "--max-examples",
            str(max_examples),
            "--seed",
            str(seed),
            "--checks",
            "all",
            "--exclude-checks",
            EXCLUDED_CHECKS,
            "--no-color",
            *(extra or []),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--url", help="an already running service (default: start one)")
    args = parser.parse_args()
    if args.url:
        proc = run_schemathesis(args.url, args.max_examples, args.seed)
        print(proc.stdout[-8000:], proc.stderr[-2000:])
        sys.exit(proc.returncode)

    from tests.servers import ServiceProcess
    from tests.tiny_models import build_bert_embedder, build_bert_reranker, build_clip

    root = Path(tempfile.mkdtemp())
    folders = [
        build_bert_embedder(root / "e"),
        build_bert_reranker(root / "r"),
        build_clip(root / "c"),
    ]
    env = {
        "MODEL_NAMES": ";".join(map(str, folders)),
        "SERVED_MODEL_NAMES": "tiny/embedder;tiny/reranker;tiny/clip",
    }
    with ServiceProcess(env) as server:
        began = time.perf_counter()
        proc = run_schemathesis(server.url, args.max_examples, args.seed)
        elapsed = time.perf_counter() - began
        alive = server.proc.poll() is None
    print(proc.stdout[-8000:], proc.stderr[-2000:])
    print(f"fuzz: {elapsed:.0f}s, exit {proc.returncode}, service alive after run: {alive}")
    sys.exit(proc.returncode or (0 if alive else 1))


if __name__ == "__main__":
    main()
