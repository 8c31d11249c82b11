"""A model that cannot load stops every entry point, non-zero, with one line (no respawn loop)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

from tests.servers import ROOT, free_port

ENTRY_POINTS = {
    "make serve": ("-m", "handlers.serve"),
    "bentoml serve": ("-m", "bentoml", "serve", "."),
    "runpod worker": ("-m", "runpod_adapter", "--rp_serve_api", "--rp_api_host", "127.0.0.1"),
}


@pytest.fixture(scope="module")
def broken_model(tmp_path_factory) -> str:
    """A folder whose config.json names a BERT model but holds no weights."""
    folder = tmp_path_factory.mktemp("broken")
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    return str(folder)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_model_that_cannot_load_stops_start_up_with_one_line(broken_model, entry):
    env = {
        **os.environ,
        "MODEL_NAMES": broken_model,
        "SERVED_MODEL_NAMES": "tiny/broken",
        "INFINITY_HOST": "127.0.0.1",
        "INFINITY_PORT": str(free_port()),
        "HF_HUB_OFFLINE": "1",
        "BENTOML_HOME": tempfile.mkdtemp(prefix="bentoml-home-"),
    }
    done = subprocess.run(
        [sys.executable, *ENTRY_POINTS[entry]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    logs = done.stdout + done.stderr
    assert done.returncode != 0, logs
    lines = [line for line in logs.splitlines() if "start-up failed: model tiny/broken" in line]
    assert len(lines) == 1, logs  # once: the worker is not respawned
    assert f"({broken_model}) could not be loaded with BACKEND=torch: OSError" in lines[0]
    assert "Traceback" not in logs
