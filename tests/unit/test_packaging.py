"""Packaging: both bentofiles' pins equal pyproject's, and `bentoml build` succeeds offline."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BENTOFILES = ["bentofile.yaml", "deploy/bentofile.cpu.yaml"]


@pytest.mark.parametrize("bentofile", BENTOFILES)
def test_bentofile_pins_match_pyproject(bentofile):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bento = yaml.safe_load((ROOT / bentofile).read_text())
    assert bento["python"]["packages"] == project["dependencies"]
    assert bento["python"]["lock_packages"] is False
    assert bento["service"] == "service:EmbeddingService"


def build(tmp_path: Path, bentofile: str) -> Path:
    """`bentoml build -f bentofile` into a throwaway BENTOML_HOME; the bento's folder."""
    env = {**os.environ, "BENTOML_HOME": str(tmp_path), "BENTOML_DO_NOT_TRACK": "true"}
    proc = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "-f", bentofile, str(ROOT), "--output", "tag"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (bento,) = (tmp_path / "bentos").glob("*/*/bento.yaml")
    assert (bento.parent / "src" / "handlers" / "core.py").exists()
    return bento.parent


def test_bentoml_build_succeeds(tmp_path):
    bento = build(tmp_path, "bentofile.yaml")
    assert bento.parent.name == "embedding-service"
    assert "nvidia/cuda" in (bento / "env" / "docker" / "Dockerfile").read_text()
    assert "torch==2.13.0" in (bento / "env" / "python" / "requirements.txt").read_text()


def test_cpu_bento_has_no_cuda_and_serves_onnx(tmp_path):
    bento = build(tmp_path, "deploy/bentofile.cpu.yaml")
    assert bento.parent.name == "embedding-service-cpu"
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    assert "nvidia/cuda" not in dockerfile and "ENV BACKEND=$BACKEND" in dockerfile
    assert "ARG BACKEND=optimum" in dockerfile and "ARG BENTOML_PORT=7997" in dockerfile
    assert "id=UV_INDEX_STRATEGY" in dockerfile  # a build-only setting, not in the image
    requirements = (bento / "env" / "python" / "requirements.txt").read_text().splitlines()
    assert requirements[0] == "--extra-index-url https://download.pytorch.org/whl/cpu"
    assert "torch==2.13.0" in requirements
