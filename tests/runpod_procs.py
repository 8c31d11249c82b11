"""Test helpers that run `python -m runpod_adapter` on loopback, and a fake RunPod job API.

Every process started here talks to 127.0.0.1 only and runs with
RUNPOD_SKIP_AUTO_SYSTEM_CHECKS=true (the SDK's start-up checks would otherwise open a
connection to a public DNS server).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

from tests.servers import ROOT, LoopbackHTTPServer, free_port


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

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

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
        self._wait_for_first_job(ready_timeout)

    def __enter__(self) -> LocalApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.stop()

    def _wait_for_first_job(self, timeout: float) -> None:
        deadline = self.began + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.logs()}")
            try:
                reply = self.client.post("/runsync", json={"input": {"openai_route": "/v1/models"}})
                if reply.status_code == 200 and reply.json().get("status") == "COMPLETED":
                    return
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


def assert_error(output: Any, code: int, message: str | None = None, fragment: str = "") -> None:
    assert isinstance(output, dict), output
    assert set(output) == {"object", "message", "type", "param", "code"}, output
    assert output["object"] == "error" and output["param"] is None
    assert output["code"] == code, output
    if message is not None:
        assert output["message"] == message
    assert fragment in output["message"]


class FakeRunPod(LoopbackHTTPServer):
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

        super().__init__(Handler)
