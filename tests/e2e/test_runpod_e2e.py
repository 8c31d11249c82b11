"""End to end for the RunPod worker: `python -m runpod_adapter` under the real RunPod SDK.

Every process here talks to 127.0.0.1 only and runs with RUNPOD_SKIP_AUTO_SYSTEM_CHECKS=true
(the SDK's start-up checks would otherwise open a connection to a public DNS server).
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from runpod_adapter.handler import ACCEPTED_SHAPES
from tests.conftest import CLIP_ID, EMBED_ID, RERANK_ID
from tests.servers import ROOT, free_port

DEPLOYED = f"{EMBED_ID}, {RERANK_ID}, {CLIP_ID}"


def worker_env(model_env: dict[str, str], **extra: str) -> dict[str, str]:
    """os.environ without any RunPod platform variable (so nothing can reach RunPod's
    servers), plus the tiny models, offline hub and skipped system checks."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("RUNPOD_")}
    return {
        **base,
        **model_env,
        "HF_HUB_OFFLINE": "1",
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
        "RUNPOD_SKIP_GPU_CHECK": "true",
        **extra,
    }


class WorkerProcess:
    """`python -m runpod_adapter ARGS` in its own session, logging to a temp file."""

    def __init__(self, env: dict[str, str], args: list[str]) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="runpod-", suffix=".log", delete=False)
        self.began = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runpod_adapter", *args],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, timeout: float = 30.0) -> tuple[int, float]:
        """SIGTERM, then SIGKILL after `timeout`; returns (exit code, seconds to exit)."""
        began = time.monotonic()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode, time.monotonic() - began

    def logs(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-6000:]


class LocalApi(WorkerProcess):
    """The SDK's local API server (`--rp_serve_api`) on a free loopback port."""

    def __init__(self, env: dict[str, str], ready_timeout: float = 240.0) -> None:
        self.port = free_port()
        super().__init__(
            env,
            ["--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", str(self.port)],
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=self.url, timeout=60)
        self.first_job_seconds = self._wait_for_first_job(ready_timeout)

    def _wait_for_first_job(self, timeout: float) -> float:
        deadline = self.began + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.logs()}")
            try:
                reply = self.client.post("/runsync", json={"input": {"openai_route": "/v1/models"}})
                if reply.status_code == 200 and reply.json().get("status") == "COMPLETED":
                    return time.monotonic() - self.began
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"worker did not answer within {timeout}s:\n{self.logs()}")

    def runsync(self, job_input: Any) -> Any:
        """POST /runsync; returns the job output (asserting the job COMPLETED)."""
        reply = self.client.post("/runsync", json={"input": job_input})
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["status"] == "COMPLETED", body
        assert "Traceback" not in reply.text
        return body["output"]


@pytest.fixture(scope="module")
def worker(model_env: dict[str, str]) -> Iterator[LocalApi]:
    api = LocalApi(worker_env(model_env))
    print(
        f"\nrunpod_adapter --rp_serve_api: first job answered {api.first_job_seconds:.1f}s "
        "after process start"
    )
    try:
        yield api
    finally:
        api.client.close()
        api.stop()


def png_data_uri(size: int = 32) -> str:
    from PIL import Image

    image = Image.new("RGB", (size, size), (200, 30, 30))
    for x in range(size):
        image.putpixel((x, x), (10, 220, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def assert_error(output: Any, code: int, message: str | None = None, fragment: str = "") -> None:
    assert isinstance(output, dict), output
    assert set(output) == {"object", "message", "type", "param", "code"}, output
    assert output["object"] == "error" and output["param"] is None
    assert output["code"] == code, output
    if message is not None:
        assert output["message"] == message
    assert fragment in output["message"]


# ----------------------------------------------------------------------------- success
def test_first_job_is_answered_soon_after_start(worker):
    assert worker.first_job_seconds < 240


def test_models_via_openai_route_is_the_body_itself(worker):
    output = worker.runsync({"openai_route": "/v1/models"})
    assert output["object"] == "list"
    caps = {m["id"]: m["capabilities"] for m in output["data"]}
    assert caps == {EMBED_ID: ["embed"], RERANK_ID: ["rerank"], CLIP_ID: ["embed", "image_embed"]}


def test_native_embeddings_return_float_vectors(worker):
    output = worker.runsync({"model": EMBED_ID, "input": ["hello world", "a cat"]})
    assert output["object"] == "list" and output["model"] == EMBED_ID
    assert [d["index"] for d in output["data"]] == [0, 1]
    for item in output["data"]:
        assert len(item["embedding"]) == 32
        assert all(isinstance(x, float) for x in item["embedding"])
        assert np.isclose(np.linalg.norm(item["embedding"]), 1.0, atol=1e-4)
    assert output["usage"]["total_tokens"] > 0 and output["id"].startswith("infinity-")


def test_openai_route_embeddings_are_a_one_element_list(worker):
    body = {"model": EMBED_ID, "input": ["hello world", "a cat"]}
    output = worker.runsync({"openai_route": "/v1/embeddings", "openai_input": body})
    assert isinstance(output, list) and len(output) == 1
    native = worker.runsync(body)
    assert output[0]["data"] == native["data"]
    assert all(isinstance(x, float) for x in output[0]["data"][0]["embedding"])


def test_native_rerank_with_docs_alias(worker):
    docs = ["a cat on the house", "the weather today", "a dog"]
    job = {"model": RERANK_ID, "query": "cat", "docs": docs, "return_docs": True}
    output = worker.runsync(job)
    assert output["object"] == "rerank" and output["model"] == RERANK_ID
    scores = [r["relevance_score"] for r in output["results"]]
    assert scores == sorted(scores, reverse=True)
    assert sorted(r["index"] for r in output["results"]) == [0, 1, 2]
    assert all(r["document"] == docs[r["index"]] for r in output["results"])


def test_openai_route_rerank_is_a_one_element_list(worker):
    body = {"model": RERANK_ID, "query": "cat", "documents": ["a cat", "a dog"], "top_n": 1}
    output = worker.runsync({"openai_route": "/v1/rerank", "openai_input": body})
    assert isinstance(output, list) and len(output) == 1
    assert output[0]["object"] == "rerank" and len(output[0]["results"]) == 1
    assert "document" not in output[0]["results"][0]


def test_image_embedding_from_data_uri(worker):
    uri = png_data_uri()
    output = worker.runsync({"model": CLIP_ID, "input": [uri], "modality": "image"})
    vector = output["data"][0]["embedding"]
    assert len(vector) == 16 and all(isinstance(x, float) for x in vector)
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-4)
    mixed = worker.runsync({"model": CLIP_ID, "input": ["a red dress", uri], "modality": "auto"})
    assert mixed["data"][1]["embedding"] == vector


def test_run_then_status_completes_a_job(worker):
    reply = worker.client.post("/run", json={"input": {"model": EMBED_ID, "input": "hello"}})
    job = reply.json()
    assert job["status"] == "IN_PROGRESS"
    status = worker.client.post(f"/status/{job['id']}").json()
    assert status["status"] == "COMPLETED"
    assert len(status["output"]["data"][0]["embedding"]) == 32


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("job_input", "code", "message", "fragment"),
    [
        (
            {"model": "x", "input": "hi"},
            404,
            f"Model 'x' is not deployed. Available deployments: {DEPLOYED}.",
            "",
        ),
        (
            {"model": RERANK_ID, "input": "hi"},
            400,
            f"Model '{RERANK_ID}' does not expose the 'embed' capability. "
            "Detected capabilities: rerank.",
            "",
        ),
        (
            {"model": EMBED_ID, "input": ["data:image/png;base64,AAAA"], "modality": "image"},
            400,
            f"Model '{EMBED_ID}' does not expose the 'image' capability. "
            "Detected capabilities: embed.",
            "",
        ),
        (
            {"model": EMBED_ID, "query": "q", "docs": ["d"]},
            400,
            None,
            "does not expose the 'rerank' capability",
        ),
        (
            {"model": EMBED_ID, "input": "hi", "modality": "video"},
            400,
            "Invalid modality: 'video'. Supported: text, image, auto (audio planned)",
            "",
        ),
        (
            {"model": CLIP_ID, "input": "hi", "modality": "audio"},
            501,
            "Audio modality is not yet implemented.",
            "",
        ),
        ({"model": RERANK_ID, "query": "q"}, 400, None, "documents"),
        ({"input": "hi"}, 400, None, "model"),
        ({"model": EMBED_ID, "input": [[1, 2, 3]]}, 400, None, "send the text itself"),
        ({"foo": 1}, 400, None, ACCEPTED_SHAPES),
        ({"openai_route": "/v1/chat/completions"}, 400, None, "Unknown openai_route"),
        ({"openai_route": "/v1/embeddings", "openai_input": "hi"}, 400, None, "openai_input"),
    ],
)
def test_errors_are_job_output_not_failures(worker, job_input, code, message, fragment):
    assert_error(worker.runsync(job_input), code, message, fragment)


def test_openai_route_errors_are_not_wrapped(worker):
    body = {"model": "x", "input": "hi"}
    output = worker.runsync({"openai_route": "/v1/embeddings", "openai_input": body})
    assert_error(output, 404, f"Model 'x' is not deployed. Available deployments: {DEPLOYED}.")


@pytest.mark.parametrize("job_input", [[1, 2], "hello", None])
def test_non_object_input_is_refused_by_the_local_api_itself(worker, job_input):
    # The SDK's local server validates `input` as an object (422) before any handler runs;
    # on RunPod such a job reaches the handler and gets the 400 error output (unit-tested).
    reply = worker.client.post("/runsync", json={"input": job_input})
    assert reply.status_code == 422


# ----------------------------------------------------------------------------- parity
IMAGE = png_data_uri()
PARITY_CASES = [
    ("/v1/models", None),
    ("/v1/embeddings", {"model": EMBED_ID, "input": ["hello world", "a cat"]}),
    ("/v1/embeddings", {"model": EMBED_ID, "input": "hello", "encoding_format": "base64"}),
    ("/v1/embeddings", {"model": EMBED_ID, "input": "hello", "dimensions": 8}),
    ("/v1/embeddings", {"model": CLIP_ID, "input": [IMAGE], "modality": "image"}),
    ("/v1/embeddings", {"model": CLIP_ID, "input": ["a red dress", IMAGE], "modality": "auto"}),
    (
        "/v1/rerank",
        {
            "model": RERANK_ID,
            "query": "cat",
            "documents": ["a cat", "a dog", "the sun"],
            "return_documents": True,
            "top_n": 2,
        },
    ),
    ("/v1/embeddings", {"model": "x", "input": "hi"}),
    ("/v1/embeddings", {"model": EMBED_ID, "input": [IMAGE], "modality": "image"}),
    ("/v1/embeddings", {"model": EMBED_ID, "input": "hi", "modality": "video"}),
    ("/v1/embeddings", {"model": CLIP_ID, "input": "hi", "modality": "audio"}),
    ("/v1/embeddings", {"model": EMBED_ID, "input": "hi", "dimensions": 999}),
    ("/v1/rerank", {"model": RERANK_ID, "query": "q"}),
    ("/v1/rerank", {"model": "x", "query": "q", "docs": ["d"]}),
]


def _strip_volatile(body: dict[str, Any]) -> dict[str, Any]:
    """Drop what differs per reply or per process: `id`, `created`, model cards' `created`."""
    out = {key: value for key, value in body.items() if key not in ("id", "created")}
    if route_of(out) == "/v1/models":
        out["data"] = [{k: v for k, v in card.items() if k != "created"} for card in out["data"]]
    return out


def route_of(body: dict[str, Any]) -> str | None:
    data = body.get("data")
    if body.get("object") == "list" and data and data[0].get("object") == "model":
        return "/v1/models"
    return None


@pytest.mark.parametrize(("route", "body"), PARITY_CASES)
def test_parity_with_http(worker, server, route, body):
    if body is None:
        http = httpx.get(f"{server.url}{route}", timeout=60)
    else:
        http = httpx.post(f"{server.url}{route}", json=body, timeout=60)
    via_openai = worker.runsync({"openai_route": route, "openai_input": body})
    if http.status_code != 200:
        error = http.json()["error"]
        expected = {
            "object": "error",
            "message": error["message"],
            "type": error["type"],
            "param": None,
            "code": http.status_code,
        }
        assert via_openai == expected
        assert worker.runsync(body) == expected  # the native shape: the same error
        return
    expected = _strip_volatile(http.json())
    if route == "/v1/models":
        assert _strip_volatile(via_openai) == expected
        return
    assert isinstance(via_openai, list) and len(via_openai) == 1
    assert _strip_volatile(via_openai[0]) == expected
    assert _strip_volatile(worker.runsync(body)) == expected  # the native shape


# ----------------------------------------------------------------------------- processes
def test_test_input_runs_one_job_and_exits(model_env):
    job = {
        "input": {
            "openai_route": "/v1/embeddings",
            "openai_input": {"model": EMBED_ID, "input": "hello"},
        }
    }
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "runpod_adapter", "--test_input", json.dumps(job)],
        cwd=ROOT,
        env=worker_env(model_env),
        capture_output=True,
        text=True,
        timeout=240,
    )
    elapsed = time.monotonic() - began
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Job result: {'output': [{'object': 'list'" in out
    assert "engines stopped" in out
    print(f"\nrunpod_adapter --test_input: whole process {elapsed:.1f}s")


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


class FakeRunPod:
    """A loopback stand-in for RunPod's job API: hands out jobs, collects results."""

    def __init__(self, jobs: list[dict[str, Any]]) -> None:
        self.pending = list(jobs)
        self.expected = len(jobs)
        self.results: dict[str, Any] = {}
        self.take_paths: list[str] = []
        self.all_done = threading.Event()
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.startswith("/job-take"):
                    with fake.lock:
                        fake.take_paths.append(self.path)
                        jobs, fake.pending = fake.pending, []
                    if jobs:
                        batch = self.path.startswith("/job-take-batch/")
                        return self._reply(200, jobs if batch else jobs[0])
                time.sleep(0.3)  # a long poll that found nothing
                self._reply(204)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                job_id = self.path.split("?")[0].rsplit("/", 1)[-1]
                with fake.lock:
                    fake.results[job_id] = json.loads(self.rfile.read(length))
                    if len(fake.results) >= fake.expected:
                        fake.all_done.set()
                self._reply(200, {})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeRunPod:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


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
            code, seconds = proc.stop(timeout=60)
        finally:
            proc.stop(timeout=5)
    assert code == 0 and seconds < 60, proc.logs()
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
    assert_error(results["bad"]["output"], 404, fragment="Model 'x' is not deployed")


def test_sigterm_stops_the_local_api_worker(worker):
    code, seconds = worker.stop(timeout=30)
    assert code == 0, worker.logs()
    assert seconds < 30 and "engines stopped" in worker.logs()
