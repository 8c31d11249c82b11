"""The RunPod Hub files and the worker's Dockerfile: shapes, settings, command."""

from __future__ import annotations

import json
from pathlib import Path

from runpod_adapter.handler import normalize

ROOT = Path(__file__).resolve().parents[2]


def test_hub_tests_json_payloads_are_accepted_shapes():
    tests = json.loads((ROOT / ".runpod" / "tests.json").read_text())
    assert tests["tests"], "tests.json has no tests"
    for case in tests["tests"]:
        assert {"name", "input"} <= set(case)
        route, _ = normalize(case["input"])
        assert route in ("/v1/models", "/v1/embeddings", "/v1/rerank", "/rerank")


def test_hub_json_has_required_fields_and_documents_settings():
    hub = json.loads((ROOT / ".runpod" / "hub.json").read_text())
    assert hub["type"] == "serverless" and hub["category"] == "embedding"
    assert hub["title"] and hub["description"]
    config = hub["config"]
    assert config["runsOn"] == "GPU" and config["gpuCount"] >= 1 and config["gpuIds"]
    assert isinstance(config["containerDiskInGb"], int)
    keys = {entry["key"] for entry in config["env"]}
    for key in ("MODEL_NAMES", "BATCH_SIZES", "BACKEND", "DTYPES", "INFINITY_QUEUE_SIZE"):
        assert key in keys
    assert {"RUNPOD_MAX_CONCURRENCY", "HF_TOKEN"} <= keys


def test_dockerfile_runs_the_adapter_with_the_volume_cache():
    dockerfile = (ROOT / "runpod_adapter" / "Dockerfile").read_text()
    assert 'CMD ["python", "-m", "runpod_adapter"]' in dockerfile
    assert "HF_HOME=/runpod-volume/huggingface-cache" in dockerfile
    assert "nvidia/cuda:" not in dockerfile and "ARG BASE_IMAGE=python:3.11-slim" in dockerfile
    assert "pip install --no-compile ." in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
