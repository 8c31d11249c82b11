"""The smoke tests of the built images: HTTP serving, the RunPod worker, no installer cache."""

from __future__ import annotations

import contextlib
import json
import threading
import time

import httpx
import numpy as np

from tests.image_check_base import check, podman
from tests.image_check_container import Container, idle_connection_open

TEXTS = ["a red dress", "blue running shoes for the trail"]
IDLE_SECONDS = 8  # past uvicorn's default keep-alive (5 s), within make serve's (75 s)
MAKE_SERVE = ("python", "-m", "handlers.serve")  # what `make serve` runs
BENTO_SRC = "/home/bentoml/bento/src"  # the bento's source folder in BentoML's images


def cosine_min(a: list[list[float]], b: list[list[float]]) -> float:
    x, y = np.array(a), np.array(b)
    return float(((x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)).min())


def embeddings(url: str, texts: list[str], timeout: float = 60) -> list[list[float]]:
    body = {"model": "sentence-transformers/all-MiniLM-L6-v2", "input": texts}
    reply = httpx.post(f"{url}/v1/embeddings", json=body, timeout=timeout)
    if reply.status_code != 200:
        raise SystemExit(f"embeddings answered {reply.status_code}: {reply.text[:500]}")
    return [item["embedding"] for item in reply.json()["data"]]


def reference() -> list[list[float]]:
    """What `make serve` (python -m handlers.serve, the bundled model) gives for TEXTS."""
    from tests.servers import ServiceProcess

    with ServiceProcess({}) as proc:
        return embeddings(proc.url, TEXTS)


def bad_setting_exits(env: dict[str, str], image: str, *command: str) -> None:
    code, out = podman(
        env, "run", "--rm", "--network=host", "--env=BATCH_SIZES=abc", image, *command
    )
    lines = [line for line in out.splitlines() if "configuration error: BATCH_SIZES='abc'" in line]
    check(
        code != 0 and len(lines) == 1 and "Traceback" not in out,
        f"{image}: BATCH_SIZES=abc exits {code} with one line",
        out,
    )


def smoke_http(env: dict[str, str], image: str, backend: str, expected: list) -> float:
    """The image's own command (BentoML's `bentoml serve $BENTO_PATH`): /readyz, /v1/models,
    an embedding equal to make serve's, uvicorn's 5 s keep-alive, SIGTERM in time with an
    in-flight request answered, a bad setting's one line. Then `python -m handlers.serve`
    from the bento's source folder, as docs/images.md gives it: ready, with make serve's 75 s
    keep-alive. Returns the seconds to /readyz of the image's own command."""
    container = Container(env, image)
    try:
        ready = container.wait_ready()
        check(True, f"{image}: /readyz 200 after {ready:.1f} s")
        check(
            not idle_connection_open(container.url, IDLE_SECONDS),
            f"{image}: its own command closes a connection idle for {IDLE_SECONDS} s "
            "(BentoML's default keep-alive)",
        )
        (card,) = httpx.get(f"{container.url}/v1/models", timeout=10).json()["data"]
        check(card["backend"] == backend, f"{image}: /v1/models says backend {card['backend']}")
        similarity = cosine_min(embeddings(container.url, TEXTS), expected)
        check(similarity >= 0.9999, f"{image}: embeddings cosine {similarity:.6f} to make serve's")
        answered: dict[str, object] = {}

        def slow_request() -> None:
            try:
                answered["vectors"] = embeddings(container.url, ["a long sentence " * 20] * 192)
            except BaseException as exc:  # reported below
                answered["error"] = exc

        worker = threading.Thread(target=slow_request)
        worker.start()
        time.sleep(0.3)
        container.stop_in_time(image)
        worker.join(60)
        check(
            "vectors" in answered,
            f"{image}: the in-flight request was answered",
            f"{answered.get('error')}\n{container.logs()}",
        )
    finally:
        container.remove()
    bad_setting_exits(env, image)
    serve = Container(env, image, *MAKE_SERVE, workdir=BENTO_SRC)
    try:
        began = serve.wait_ready()
        check(True, f"{image}: `python -m handlers.serve` /readyz 200 after {began:.1f} s")
        check(
            idle_connection_open(serve.url, IDLE_SECONDS),
            f"{image}: `python -m handlers.serve` keeps a connection idle for {IDLE_SECONDS} s",
        )
        serve.stop_in_time(image)
    finally:
        serve.remove()
    return round(ready, 1)


def smoke_runpod(env: dict[str, str], image: str, expected: list) -> None:
    """--test_input, and /runsync on --rp_serve_api; a bad setting's one line."""
    from tests.servers import free_port

    job = {"model": "sentence-transformers/all-MiniLM-L6-v2", "input": TEXTS}
    test_input = ["--test_input", json.dumps({"input": job})]
    code, out = podman(
        env,
        "run",
        "--rm",
        "--network=host",
        image,
        "python",
        "-m",
        "runpod_adapter",
        *test_input,
        timeout=300,
    )
    check(
        code == 0 and "embedding" in out,
        f"{image}: --test_input answers (exit {code})",
        out,
    )
    port = free_port()
    serve = ["--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", str(port)]
    container = Container(env, image, "python", "-m", "runpod_adapter", *serve, port=port)
    try:
        began, reply = time.monotonic(), None
        while time.monotonic() - began < 300 and container.state() == "running":
            with contextlib.suppress(httpx.HTTPError):
                reply = httpx.post(f"{container.url}/runsync", json={"input": job}, timeout=60)
                if reply.status_code == 200:
                    break
            time.sleep(0.5)
        body = reply.json() if reply is not None and reply.status_code == 200 else {}
        check(body.get("status") == "COMPLETED", f"{image}: /runsync COMPLETED", str(body))
        vectors = [item["embedding"] for item in body["output"]["data"]]
        similarity = cosine_min(vectors, expected)
        check(similarity >= 0.9999, f"{image}: /runsync cosine {similarity:.6f} to make serve's")
        container.stop_in_time(image)
    finally:
        container.remove()
    bad_setting_exits(env, image, "python", "-m", "runpod_adapter")


def no_installer_cache(env: dict[str, str], image: str) -> None:
    """Nothing left to prune: no pip or uv cache in the image (uv runs with UV_NO_CACHE in
    the bentos, pip with PIP_NO_CACHE_DIR in the RunPod image)."""
    script = "for d in /root/.cache /home/bentoml/.cache; do test -e $d && du -sh $d; done; true"
    code, out = podman(
        env, "run", "--rm", "--user=root", "--entrypoint=/bin/sh", image, "-c", script
    )
    check(code == 0 and not out.strip(), f"{image}: no installer cache", out)


# a stereo 44.1 kHz tone written by the image's libsndfile in each compressed codec, decoded by
# the service's own bounded decoder and resampled to 48 kHz (soundfile and soxr at work)
AUDIO_CHECK = """
import io, sys, numpy as np, soundfile as sf
sys.path.insert(0, "src")  # a bento's code, from its working directory (the worker's: its own)
from handlers.media.audio import AudioLimits, decode_audio, resampled
tone = np.sin(np.arange(44100, dtype=np.float32) / 10)[:, None].repeat(2, 1) / 2
for fmt in ("WAV", "FLAC", "OGG", "MP3"):
    out = io.BytesIO()
    sf.write(out, tone, 44100, format=fmt)
    clip = decode_audio(out.getvalue(), AudioLimits(60, 8, 192000))
    assert len(resampled(clip, 48000)) == 48000 and abs(clip.seconds - 1) < 0.05, fmt
print("audio decoded")
"""


def decodes_audio(env: dict[str, str], image: str) -> None:
    """The image decodes WAV, FLAC, OGG and MP3 and resamples (libsndfile in the soundfile
    wheel, soxr): audio inputs work in it."""
    code, out = podman(env, "run", "--rm", image, "python", "-c", AUDIO_CHECK)
    check(code == 0 and "audio decoded" in out, f"{image}: decodes WAV, FLAC, OGG, MP3", out)
