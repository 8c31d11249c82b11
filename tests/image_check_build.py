"""Building the three images with the Makefile's targets, the CPU wheel index stood in."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import threading
import time
from pathlib import Path

from tests.image_check_base import ROOT, WORK, run, say

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
IMAGES = {
    "cpu": "embedding-service-cpu:test",
    "gpu": "embedding-service:test",
    "runpod": "embedding-worker:test",
}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base's name)
        pass


class WheelIndex:
    """A PEP 503 index on 127.0.0.1 serving torch's CPU wheel from pip's local find-links
    folder: the stand-in for the CPU wheel index, which is unreachable here."""

    def __init__(self) -> None:
        links = os.environ.get("PIP_FIND_LINKS", "/opt/wheels").split()
        wheels = [w for folder in links for w in Path(folder).glob("torch-2.13.0+cpu-*.whl")]
        if not wheels:
            raise SystemExit(f"no torch 2.13.0 CPU wheel in {links} for the index stand-in")
        self.root = WORK / "cpu-index"
        page = self.root / "simple" / "torch"
        page.mkdir(parents=True, exist_ok=True)
        for wheel in wheels:
            with contextlib.suppress(FileExistsError):
                (page / wheel.name).symlink_to(wheel)
        anchors = "".join(f'<a href="{w.name}">{w.name}</a>\n' for w in wheels)
        (page / "index.html").write_text(f"<html><body>\n{anchors}</body></html>\n")
        handler = functools.partial(_QuietHandler, directory=self.root)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"

    def __enter__(self) -> WheelIndex:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


def build_images(env: dict[str, str], index: WheelIndex) -> dict[str, float]:
    """The Makefile's image targets, as the README gives them, with buildah: seconds each."""
    cpu_bentofile = WORK / "bentofile.cpu.yaml"
    cpu_bentofile.write_text(
        (ROOT / "deploy" / "bentofile.cpu.yaml").read_text().replace(CPU_INDEX, index.url)
    )
    make = {
        "IMAGE_TAG": "test",
        "IMAGE_BACKEND": "buildah",
        "IMAGE_OPTS": "--opt network=host",
        "IMAGE_BUILD": "buildah bud --network host",
        "CPU_BENTOFILE": str(cpu_bentofile),
    }
    env = {**env, "BENTOML_HOME": str(WORK / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    seconds = {}
    for name in IMAGES:
        began = time.monotonic()
        say(f"make image-{name}")
        run("make", f"image-{name}", *[f"{k}={v}" for k, v in make.items()], env=env, cwd=ROOT)
        seconds[name] = time.monotonic() - began
        say(f"{IMAGES[name]} built in {seconds[name]:.0f} s")
    return seconds
