"""Packaging: bentofile pins equal pyproject's, and `bentoml build` succeeds offline."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_bentofile_pins_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bento = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    assert bento["python"]["packages"] == project["dependencies"]
    assert bento["python"]["lock_packages"] is False
    assert bento["service"] == "service:EmbeddingService"


def test_bentoml_build_succeeds(tmp_path):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path), "BENTOML_DO_NOT_TRACK": "true"}
    proc = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", str(ROOT), "--output", "tag"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (bento,) = (tmp_path / "bentos" / "embedding-service").glob("*/bento.yaml")
    dockerfile = (bento.parent / "env" / "docker" / "Dockerfile").read_text()
    assert "nvidia/cuda" in dockerfile
    requirements = (bento.parent / "env" / "python" / "requirements.txt").read_text()
    assert "torch==2.13.0" in requirements
    assert (bento.parent / "src" / "handlers" / "core.py").exists()
