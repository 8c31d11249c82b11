"""Audio embeddings: clips/s of an HTSAT-sized CLAP on data-URI WAV clips of mixed length
(1-10 s at 48 kHz, stock Infinity's only rate), ours (torch) against stock Infinity's audio
path, each server alone with the model, side by side in one run; and what decoding costs per
clip in process (ours: libsndfile, mono, resampled where the rate differs).

    python -m bench.audio [--seconds 20]   # make bench runs it (bench.perf)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

__all__ = ["build_model", "decode_cost", "measure"]

LENGTHS = (1, 3, 5, 7, 10, 2, 4, 6, 8, 9, 1.5, 2.5)  # seconds: mixed, none past the window
PER_REQUEST = 4
CONCURRENCY = 4
# HTSAT-tiny, as laion/clap-htsat-unfused's audio tower (27.5 M parameters)
HTSAT = {
    "spec_size": 256,
    "patch_embeds_hidden_size": 96,
    "depths": [2, 2, 6, 2],
    "num_attention_heads": [4, 8, 16, 32],
    "window_size": 8,
    "hidden_size": 768,
}


def build_model(folder: Path) -> Path:
    """The CLAP: HTSAT-tiny audio tower, 10 s window at 48 kHz, seeded random weights (the
    architecture and cost of the real one; its vectors mean nothing)."""
    from tests.families_audio import build_clap

    return build_clap(folder, seconds=10, **HTSAT)


def clips() -> list[bytes]:
    """WAV files (16-bit, 48 kHz, mono) of LENGTHS seconds: tones over noise."""
    from tests.audio_clips import clip_bytes, signal

    return [
        clip_bytes(signal("tone", s, 48_000) + signal("noise", s, 48_000, seed=i), 48_000)
        for i, s in enumerate(LENGTHS)
    ]


def bodies(model: str) -> list[dict]:
    from tests.audio_clips import data_uri

    uris = [data_uri(data) for data in clips()]
    return [
        {"model": model, "modality": "audio", "input": uris[i : i + PER_REQUEST]}
        for i in range(0, len(uris), PER_REQUEST)
    ]


def decode_cost(rounds: int = 5) -> dict:
    """Mean milliseconds to decode one of the bench's clips (base64 to mono float32), and
    one 44.1 kHz stereo MP3 of 5 s (decoded, mixed and resampled to 48 kHz)."""
    import base64

    from handlers.media.audio import AudioLimits, decode_audio, resampled
    from tests.audio_clips import clip_bytes, signal

    limits = AudioLimits(600, 8, 192_000)
    uris = [base64.b64encode(data).decode() for data in clips()]
    mp3 = clip_bytes(signal("tone", 5, 44_100, 2), 44_100, "mp3")

    def timed(step, items) -> float:
        began = time.perf_counter()
        for _ in range(rounds):
            for item in items:
                step(item)
        return round((time.perf_counter() - began) * 1000 / (rounds * len(items)), 2)

    wav = timed(lambda u: decode_audio(base64.b64decode(u), limits), uris)
    resampling = timed(lambda d: resampled(decode_audio(d, limits), 48_000), [mp3])
    return {"wav_48k_ms_per_clip": wav, "mp3_44k1_stereo_5s_ms": resampling}


def measure(ours: list[str], env: dict, folder: Path, seconds: float, rounds: int = 2) -> dict:
    """Builds the model into `folder`; clips/s and latency of ours and stock on the same
    bodies, both servers up, the points alternated (ours, stock, ours, ...) over `rounds`
    rounds of `seconds / rounds` each so that drift on a shared machine hits both; the
    ratio, and decode_cost()."""
    from contextlib import ExitStack

    from bench.mixed import settle
    from bench.servers import Server
    from bench.stock import stock_command
    from bench.wrk import run_wrk

    print("audio (an HTSAT-sized CLAP, ours and stock)", flush=True)
    model = build_model(folder)
    served = {**env, "MODEL_NAMES": str(model), "SERVED_MODEL_NAMES": "clap"}
    specs = {"ours_torch": (ours, served), "stock": (stock_command(str(model), "clap", 32), {})}
    requests = bodies("clap")
    rows: dict[str, list[dict]] = {name: [] for name in specs}
    with ExitStack() as stack:
        servers = [
            stack.enter_context(
                Server(name, argv, server_env, "/v1/embeddings", "clap", probe=requests[0])
            )
            for name, (argv, server_env) in specs.items()
        ]
        for server in servers:  # warm, then clear the queue
            run_wrk(server.url, requests, 2, 2)
            settle(server.url, requests[0])
        for _ in range(rounds):
            for server in servers:
                rows[server.name].append(
                    run_wrk(server.url, requests, CONCURRENCY, seconds / rounds)
                )
                settle(server.url, requests[0])
    out: dict = {}
    for name, runs in rows.items():
        out[name] = {
            "clips_per_s": round(sum(r["steady_rps"] for r in runs) / rounds * PER_REQUEST, 2),
            "p50_ms": max(r["p50_ms"] for r in runs),
            "p99_ms": max(r["p99_ms"] for r in runs),
            "errors": sum(r["non_2xx"] + r["socket_errors"] for r in runs),
        }
        print(f"  audio {name}: {out[name]}", flush=True)
    ours_rate, stock_rate = out["ours_torch"]["clips_per_s"], out["stock"]["clips_per_s"]
    failed = out["ours_torch"]["errors"] or out["stock"]["errors"]
    # a server that fails fast is not fast: no ratio when either failed a request
    out["ratio"] = None if failed or not stock_rate else round(ours_rate / stock_rate, 2)
    out["decode"] = decode_cost()
    serving_ms = 1000 / max(ours_rate, 1e-9)
    out["decode"]["share_of_serving"] = round(out["decode"]["wav_48k_ms_per_clip"] / serving_ms, 3)
    print(f"  audio decode: {out['decode']}", flush=True)
    return out


def main() -> None:
    from bench.perf import OURS, ensure_wrk, ours_env

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-audio-") as scratch:
        env = ours_env({}, "torch", Path(scratch))
        print(json.dumps(measure(OURS, env, Path(scratch) / "clap", args.seconds)))


if __name__ == "__main__":
    main()
