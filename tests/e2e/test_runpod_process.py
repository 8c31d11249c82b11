"""The RunPod worker as a whole process: --test_input, bad configuration, the real job loop."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from tests.conftest import EMBED_ID
from tests.runpod_procs import FakeRunPod, WorkerProcess, assert_error, worker_env
from tests.servers import ROOT


def test_test_input_runs_one_job_and_exits(model_env):
    job = {
        "input": {
            "openai_route": "/v1/embeddings",
            "openai_input": {"model": EMBED_ID, "input": "hello"},
        }
    }
    proc = subprocess.run(
        [sys.executable, "-m", "runpod_adapter", "--test_input", json.dumps(job)],
        cwd=ROOT,
        env=worker_env(model_env),
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Job result: {'output': [{'object': 'list'" in out
    assert "engines stopped" in out


def test_bad_configuration_exits_with_one_line(model_env):
    proc = subprocess.run(
        [sys.executable, "-m", "runpod_adapter", "--test_input", '{"input": {}}'],
        cwd=ROOT,
        env=worker_env(model_env, BATCH_SIZES="0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "BATCH_SIZES" in lines[0] and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_real_worker_loop_takes_jobs_concurrently_and_stops_on_sigterm(model_env):
    jobs = [
        {"id": "models", "input": {"openai_route": "/v1/models"}},
        {"id": "native", "input": {"model": EMBED_ID, "input": "hello"}},
        {
            "id": "openai",
            "input": {
                "openai_route": "/v1/embeddings",
                "openai_input": {"model": EMBED_ID, "input": "hello"},
            },
        },
        {"id": "bad", "input": {"model": "x", "input": "hello"}},
    ]
    with FakeRunPod(jobs) as fake:
        base = f"http://127.0.0.1:{fake.port}"
        env = worker_env(
            model_env,
            RUNPOD_WEBHOOK_GET_JOB=f"{base}/job-take/$ID?gpu=test",
            RUNPOD_WEBHOOK_POST_OUTPUT=f"{base}/job-done/$RUNPOD_POD_ID/$ID?gpu=test",
            RUNPOD_MAX_CONCURRENCY="4",
        )
        proc = WorkerProcess(env, [])
        try:
            assert fake.all_done.wait(240), proc.logs()
            code = proc.stop(timeout=60)
        finally:
            proc.stop(timeout=5)
    assert code == 0, proc.logs()
    assert "engines stopped" in proc.logs()
    # The concurrency modifier asked for RUNPOD_MAX_CONCURRENCY jobs per take.
    assert "batch_size=4" in fake.take_paths[0]
    results = fake.results
    assert set(results) == {"models", "native", "openai", "bad"}
    assert results["models"]["output"]["object"] == "list"
    assert len(results["native"]["output"]["data"][0]["embedding"]) == 32
    # Concurrent jobs share engine batches: equal up to float rounding.
    assert np.allclose(
        results["openai"]["output"][0]["data"][0]["embedding"],
        results["native"]["output"]["data"][0]["embedding"],
        atol=1e-5,
    )
    assert "error" not in results["bad"]
    assert_error(results["bad"]["output"], 404, fragment="'x'")
