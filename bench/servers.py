"""Start a server process on a free loopback port, time it to its first embedding, watch RSS."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx

from tests.servers import free_port

__all__ = ["Server", "tree_rss_mb"]


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (BentoML runs two processes)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[int(entry.name)] = int(line.split()[1])
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += rss.get(current, 0)
        todo.extend(children.get(current, []))
    return total / 1024


class Server:
    """A server command run until stopped; `cold_start_s` is spawn to first 200 embedding."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        path: str,
        model: str,
        probe: dict | None = None,
    ):
        """`probe`: the body whose first 200 on `path` ends the cold start (default: one
        text to embed)."""
        self.name, self.argv, self.path, self.model = name, argv, path, model
        self.probe = probe or {"model": model, "input": ["cold start"]}
        self.port = free_port()
        merged = {**os.environ, **env}
        self.env = {k: v.replace("{port}", str(self.port)) for k, v in merged.items()}
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
        self.cold_start_s = 0.0
        self.peak_rss_mb = 0.0
        self._watching = threading.Event()

    def __enter__(self) -> Server:
        began = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=self._watch_rss, daemon=True).start()
        with httpx.Client(timeout=30) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited; log: {self.log.name}")
                if time.monotonic() - began > 600:
                    raise RuntimeError(f"{self.name} did not answer in 600 s: {self.log.name}")
                try:
                    if client.post(self.url, json=self.probe).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        self.cold_start_s = round(time.monotonic() - began, 2)
        return self

    def _watch_rss(self) -> None:
        while not self._watching.is_set() and self.proc.poll() is None:
            self.peak_rss_mb = max(self.peak_rss_mb, tree_rss_mb(self.proc.pid))
            time.sleep(0.25)

    def __exit__(self, *exc: object) -> None:
        self._watching.set()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
