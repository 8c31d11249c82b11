"""`make image-test`: build the CPU, GPU and RunPod images here, no Docker daemon; smoke-test each.

Run as root on a Debian machine: buildah, podman, debootstrap and runc are installed with
apt-get when missing. Registries other than PyPI and Debian's are unreachable here, so the
`python:3.11-slim` base is a stand-in made with debootstrap (bookworm's python3.11, as the
official image is bookworm's Debian with Python 3.11), and for the CPU image the CPU wheel
index is replaced by a loopback stand-in serving torch's CPU wheel from pip's local
find-links folder. Every other step is the one the Makefile's image targets (and the README)
run. Prints each image's size and build time and every smoke check; exits non-zero on the
first failure.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import sys
import time

from tests.image_check_base import ROOT, check, container_env, ensure_tools, make_base, run, say
from tests.image_check_build import IMAGES, WheelIndex, build_images
from tests.image_check_smoke import (
    decodes_audio,
    no_installer_cache,
    reference,
    smoke_http,
    smoke_runpod,
)

TARGET_GB = {"cpu": 1.8, "gpu": 5.0, "runpod": 5.0}  # issue targets, checked below


def size_gb(env: dict[str, str], image: str) -> float:
    done = run(
        "podman",
        "image",
        "inspect",
        "--format={{.Size}}",
        image,
        env=env,
        capture_output=True,
        text=True,
    )
    return int(done.stdout.strip()) / 1e9


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("make image-test runs as root (buildah, podman, debootstrap)")
    ensure_tools()
    env = container_env()
    began = time.monotonic()
    make_base(env)
    say(f"python:3.11-slim stand-in ready in {time.monotonic() - began:.0f} s")
    with WheelIndex() as index:
        seconds = build_images(env, index)
    expected = reference()
    ready = {
        "cpu": smoke_http(env, IMAGES["cpu"], "optimum", expected),
        "gpu": smoke_http(env, IMAGES["gpu"], "torch", expected),
    }
    smoke_runpod(env, IMAGES["runpod"], expected)
    for image in IMAGES.values():
        no_installer_cache(env, image)
        decodes_audio(env, image)
    figures = {}
    for name, image in IMAGES.items():  # every figure first, then the targets
        size = size_gb(env, image)
        say(f"{image}: {size:.2f} GB, built in {seconds[name]:.0f} s")
        figures[image.split(":")[0]] = {
            "size_gb": round(size, 2),
            "target_gb": TARGET_GB[name],
            "build_s": round(seconds[name]),
            "ready_s": ready.get(name),
        }
    for name, image in IMAGES.items():
        size = figures[image.split(":")[0]]["size_gb"]
        check(size <= TARGET_GB[name], f"{image}: {size:.2f} GB <= {TARGET_GB[name]} GB")
    record(figures)
    say("all images built and passed")


def record(figures: dict) -> None:
    """bench/images.json, and BENCHMARKS.md re-rendered with its Images section (the
    benchmark's own figures and plot stay those of its last run)."""
    from bench import report

    machine = f"{os.cpu_count()} cores, {platform.machine()}, no GPU"
    images = {"date": time.strftime("%Y-%m-%d"), "machine": machine, "images": figures}
    path = ROOT / "bench" / "images.json"
    path.write_text(json.dumps(images, indent=2) + "\n")
    results = json.loads((ROOT / "bench" / "results.json").read_text())
    (ROOT / "BENCHMARKS.md").write_text(report.render(results, path))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
