"""Packaging: pins match, the serve command, what `bentoml build` (offline) produces and what
`bentoml containerize` renders from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from handlers.serve import KEEPALIVE_SECONDS, command

pytestmark = pytest.mark.slow  # bento builds / ONNX exports

ROOT = Path(__file__).resolve().parents[2]
BENTOFILES = ["bentofile.yaml", "deploy/bentofile.cpu.yaml"]


@pytest.mark.parametrize("bentofile", BENTOFILES)
def test_bentofile_pins_match_pyproject(bentofile):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bento = yaml.safe_load((ROOT / bentofile).read_text())
    assert bento["python"]["packages"] == project["dependencies"]
    assert bento["python"]["lock_packages"] is False
    assert bento["service"] == "service:EmbeddingService"


def test_the_serve_command_carries_host_port_keepalive_and_graceful_shutdown(make_settings):
    settings = make_settings(INFINITY_HOST="::", INFINITY_PORT="8123", SHUTDOWN_TIMEOUT="45")
    argv = command(settings)
    assert argv[1:5] == ["-m", "bentoml", "serve", "service:EmbeddingService"]
    flags = dict(zip(argv[5::2], argv[6::2], strict=True))
    assert flags == {
        "--host": "::",
        "--port": "8123",
        "--timeout-keep-alive": str(KEEPALIVE_SECONDS),
        "--timeout-graceful-shutdown": "45",
    }
    assert KEEPALIVE_SECONDS == 75


def build(tmp_path: Path, bentofile: str) -> tuple[dict, Path]:
    """`bentoml build -f bentofile` offline into a throwaway BENTOML_HOME, with
    INFINITY_HOST/PORT set in the build's environment: (bento.yaml, the bento's folder)."""
    env = {
        **os.environ,
        "BENTOML_HOME": str(tmp_path),
        "BENTOML_DO_NOT_TRACK": "true",
        "INFINITY_HOST": "127.0.0.2",
        "INFINITY_PORT": "8123",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "-f", bentofile, str(ROOT), "--output", "tag"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (bento_file,) = (tmp_path / "bentos").glob("*/*/bento.yaml")
    return yaml.safe_load(bento_file.read_text()), bento_file.parent


# The Dockerfile `bentoml containerize` builds (BentoML's public get_containerfile renders it
# as containerize does: the bento copied into a temporary folder and its Dockerfile rendered
# there), for a BuildKit backend (docker, buildx, buildctl) and for one without (buildah,
# podman, nerdctl). Run from a folder that does not contain the temporary folder, as
# BentoCloud's builder or a CI job may: with a `dockerfile_template` BentoML 1.4.40 refuses
# exactly this ("Accessing file outside of current working directory is not allowed").
CONTAINERFILE = """
import json, sys
from bentoml.container import get_containerfile

rendered = {}
for buildkit in (True, False):
    get_containerfile(sys.argv[1], output_path="Containerfile", enable_buildkit=buildkit)
    rendered[str(buildkit)] = open("Containerfile").read()
print(json.dumps(rendered))
"""


def containerfiles(tmp_path: Path, tag: str) -> dict[bool, str]:
    """The Dockerfiles `bentoml containerize TAG` builds, rendered from another folder."""
    elsewhere, tmpdir = tmp_path / "elsewhere", tmp_path / "tmpdir"
    elsewhere.mkdir()
    tmpdir.mkdir()
    env = {**os.environ, "BENTOML_HOME": str(tmp_path), "BENTOML_DO_NOT_TRACK": "true"}
    env["TMPDIR"] = str(tmpdir)  # a sibling of the current folder, not below it
    proc = subprocess.run(
        [sys.executable, "-c", CONTAINERFILE, tag],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {key == "True": text for key, text in json.loads(proc.stdout).items()}


@pytest.mark.parametrize("bentofile", BENTOFILES)
def test_bare_containerize_works_from_any_folder_with_any_backend(tmp_path, bentofile):
    """No dockerfile_template (nor anything else that makes containerize resolve a file):
    BentoML's own image spec, rendered the same from any folder, BuildKit or not."""
    assert "dockerfile_template" not in yaml.safe_load((ROOT / bentofile).read_text())["docker"]
    bento, folder = build(tmp_path, bentofile)
    assert bento["spec"] == 2 and bento["image"]["base_image"] == "python:3.11-slim"
    rendered = containerfiles(tmp_path, f"{bento['name']}:{bento['version']}")
    for buildkit, dockerfile in rendered.items():
        assert ("# syntax = docker/dockerfile" in dockerfile) is buildkit
        assert "FROM python:3.11-slim AS base-container" in dockerfile
        assert "nvidia/cuda" not in dockerfile
        assert 'ENTRYPOINT [ "/home/bentoml/bento/env/docker/entrypoint.sh" ]' in dockerfile
    assert "--mount=" not in rendered[False]  # what buildah, podman and nerdctl build


@pytest.mark.parametrize("bentofile", BENTOFILES)
def test_the_install_leaves_no_installer_cache_and_needs_no_buildkit(tmp_path, bentofile):
    """uv runs without a cache (UV_NO_CACHE, set before the install), so its layer holds
    the packages and nothing to prune, with or without BuildKit's cache mount; no setting
    needs BuildKit (a `stage: build` env does) and none is a python option bento v2 drops."""
    python = yaml.safe_load((ROOT / bentofile).read_text())["python"]
    assert "pip_args" not in python  # BentoML 1.4.40's image spec ignores it
    bento, folder = build(tmp_path, bentofile)
    assert {env.get("stage", "all") for env in bento.get("envs") or []} <= {"all"}
    dockerfile = (folder / "env" / "docker" / "Dockerfile").read_text()
    assert "--mount=" not in dockerfile and "# syntax" not in dockerfile
    head, install = dockerfile.split("\nRUN if [ -d ./src ]", 1)
    assert "uv --directory $INSTALL_ROOT pip install -r" in install.split("\n\n")[0]
    assert "ARG UV_NO_CACHE=1\nENV UV_NO_CACHE=$UV_NO_CACHE" in head
    assert "dockerfile_template" not in dockerfile and "prune" not in dockerfile


@pytest.mark.parametrize("bentofile", BENTOFILES)
def test_the_image_serves_the_bento_on_infinity_host_and_port(tmp_path, bentofile):
    """The image's command is BentoML's entrypoint with no arguments: `bentoml serve
    $BENTO_PATH`. The service config binds INFINITY_HOST:INFINITY_PORT (read when
    service.py is imported, so at start, not at build) and the entrypoint hands flags to
    `bentoml serve` (the keep-alive and graceful-shutdown limits are flags only) and runs
    any other command as it is."""
    bento, folder = build(tmp_path, bentofile)
    (svc,) = bento["services"]
    assert svc["config"]["http"] == {"host": "127.0.0.2", "port": 8123}
    assert svc["config"]["traffic"]["timeout"] == 300
    dockerfile = (folder / "env" / "docker" / "Dockerfile").read_text()
    lines = [line for line in dockerfile.splitlines() if line.strip()]
    assert lines[-1] == 'ENTRYPOINT [ "/home/bentoml/bento/env/docker/entrypoint.sh" ]'
    assert not any(line.startswith("CMD") for line in lines)
    entrypoint = (folder / "env" / "docker" / "entrypoint.sh").read_text()
    assert 'set -- bentoml serve "$@" "$BENTO_PATH"' in entrypoint  # no args, or flags
    assert 'exec "$@"' in entrypoint
    assert (folder / "src" / "handlers" / "serve.py").exists()
    assert (folder / "src" / "service.py").exists()
    assert not (folder / "src" / "deploy").exists()
    requirements = (folder / "env" / "python" / "requirements.txt").read_text()
    assert "torch==2.13.0" in requirements.splitlines()


def test_the_gpu_bento_takes_cuda_from_the_torch_wheel_and_sets_no_bentoml_address(tmp_path):
    bento, folder = build(tmp_path, "bentofile.yaml")
    assert folder.parent.name == "embedding-service"
    envs = {env["name"]: env["value"] for env in bento["envs"]}
    assert envs == {  # no BENTOML_HOST/PORT: INFINITY_* decide
        "UV_NO_CACHE": "1",
        "NVIDIA_VISIBLE_DEVICES": "all",
        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
    }
    dockerfile = (folder / "env" / "docker" / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile and "nvidia/cuda" not in dockerfile
    assert "ENV NVIDIA_VISIBLE_DEVICES=$NVIDIA_VISIBLE_DEVICES" in dockerfile
    assert "ARG NVIDIA_DRIVER_CAPABILITIES=compute,utility" in dockerfile
    assert "--extra-index-url" not in (folder / "env" / "python" / "requirements.txt").read_text()


def test_cpu_bento_has_no_cuda_and_serves_onnx(tmp_path):
    _, folder = build(tmp_path, "deploy/bentofile.cpu.yaml")
    assert folder.parent.name == "embedding-service-cpu"
    dockerfile = (folder / "env" / "docker" / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile and "nvidia/cuda" not in dockerfile
    assert "ARG BACKEND=optimum" in dockerfile and "ENV BACKEND=$BACKEND" in dockerfile
    # uv takes each pin's best match across PyPI and the CPU index while installing
    assert "ARG UV_INDEX_STRATEGY=unsafe-best-match" in dockerfile
    requirements = (folder / "env" / "python" / "requirements.txt").read_text().splitlines()
    # so torch==2.13.0 resolves to the CPU build
    assert requirements[0] == "--extra-index-url https://download.pytorch.org/whl/cpu"
    assert "torch==2.13.0" in requirements


def test_images_share_one_base_one_torch_and_one_cuda_story():
    """The GPU bento, the CPU bento and the RunPod image: one base, the pinned torch (whose PyPI
    build is CUDA 13.0), the NVIDIA runtime variables on GPU images, and RunPod hosts with a
    CUDA 13.0 driver; the Makefile's image targets build exactly these files."""
    bases = {yaml.safe_load((ROOT / f).read_text())["docker"]["base_image"] for f in BENTOFILES}
    dockerfile = (ROOT / "runpod_adapter" / "Dockerfile").read_text()
    assert bases == {"python:3.11-slim"}
    assert "ARG BASE_IMAGE=python:3.11-slim" in dockerfile
    assert "NVIDIA_VISIBLE_DEVICES=all" in dockerfile
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in dockerfile
    assert "prune-site-packages /opt/venv/lib/python3.11/site-packages" in dockerfile  # RunPod
    gpu_envs = {
        e["name"]: e["value"] for e in yaml.safe_load((ROOT / BENTOFILES[0]).read_text())["envs"]
    }
    assert gpu_envs == {
        "UV_NO_CACHE": "1",
        "NVIDIA_VISIBLE_DEVICES": "all",
        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]  # PyPI's build: 2.13.0+cu130
    hub = json.loads((ROOT / ".runpod" / "hub.json").read_text())
    assert hub["config"]["allowedCudaVersions"] == ["13.0"]
    images = (ROOT / "docs" / "images.md").read_text()
    assert "CUDA 13.0" in images and "driver ≥ 580" in images
    makefile = (ROOT / "Makefile").read_text()
    assert "CPU_BENTOFILE ?= deploy/bentofile.cpu.yaml" in makefile
    assert "GPU_BENTOFILE ?= bentofile.yaml" in makefile
    assert "-f runpod_adapter/Dockerfile" in makefile
    # a plain `bentoml containerize`, as documented: no TMPDIR or current-folder trick
    assert "CONTAINERIZE := $(BIN)/bentoml containerize --backend" in makefile
    assert "TMPDIR" not in makefile


def test_api_routes_are_left_out_of_request_tracing_by_default():
    """BentoML records a span per request and per receive/send, exporter or not (about a
    third of the event loop on small requests): the API routes skip it by default."""
    from opentelemetry.util.http import ExcludeList

    import service

    excluded = ExcludeList(service.EmbeddingService.config["tracing"]["excluded_urls"])
    for path in ("/v1/embeddings", "/v1/rerank", "/v1/tokenize", "/v2/rerank", "/embeddings"):
        assert excluded.url_disabled(f"http://127.0.0.1:7997{path}")
    for path in ("/livez", "/readyz", "/metrics"):
        assert not excluded.url_disabled(f"http://127.0.0.1:7997{path}")
