"""Test helpers that run real servers on loopback: the BentoML service, small HTTP stubs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def serving(models: dict[str, Path]) -> dict[str, str]:
    """The environment that serves `models` (served id -> folder) under their ids."""
    return {
        "MODEL_NAMES": ";".join(str(folder) for folder in models.values()),
        "SERVED_MODEL_NAMES": ";".join(models),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LoopbackHTTPServer:
    """A ThreadingHTTPServer for `handler` on 127.0.0.1:<free port>, served from a daemon
    thread while used as a context manager."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class ServiceProcess:
    """`python -m handlers.serve` (or `command`) on 127.0.0.1:<free port>, given by
    INFINITY_HOST and INFINITY_PORT; waits for /readyz; stops it."""

    def __init__(
        self,
        env: dict[str, str],
        ready_timeout: float = 180.0,
        command: tuple[str, ...] = ("-m", "handlers.serve"),
    ) -> None:
        self.command = [sys.executable, *command]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "INFINITY_HOST": "127.0.0.1",
            "INFINITY_PORT": str(self.port),
            "HF_HUB_OFFLINE": "1",
            "BENTOML_HOME": tempfile.mkdtemp(prefix="bentoml-home-"),
            **env,
        }
        self.ready_timeout = ready_timeout
        self.startup_seconds = 0.0
        self.log = tempfile.NamedTemporaryFile(prefix="service-", suffix=".log", delete=False)
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServiceProcess:
        began = time.monotonic()
        self.proc = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = began + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited early:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    self.startup_seconds = time.monotonic() - began
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"service not ready after {self.ready_timeout}s:\n{self.logs()}")

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()

    def logs(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-6000:]
