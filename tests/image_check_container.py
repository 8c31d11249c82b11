"""One container of an image under podman: ready, logs, stopped in time; idle connections."""

from __future__ import annotations

import contextlib
import http.client
import socket
import subprocess
import time

import httpx

from tests.image_check_base import check, podman, run

GRACE_SECONDS = 10  # docker's and podman's default stop timeout


class Container:
    """`podman run -d --network host` of an image, listening on 127.0.0.1:<free port>."""

    def __init__(
        self, env: dict[str, str], image: str, *command: str, port: int = 0, workdir: str = ""
    ) -> None:
        from tests.servers import free_port

        self.env, self.port = env, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = f"image-test-{self.port}"
        settings = {"INFINITY_HOST": "127.0.0.1", "INFINITY_PORT": str(self.port)}
        flags = [f"--env={key}={value}" for key, value in settings.items()]
        flags += [f"--workdir={workdir}"] if workdir else []
        run(
            "podman",
            "run",
            "-d",
            "--network=host",
            f"--name={self.name}",
            *flags,
            image,
            *command,
            env=env,
            stdout=subprocess.DEVNULL,
        )

    def wait_ready(self, path: str = "/readyz", timeout: float = 300) -> float:
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return time.monotonic() - began
            if self.state() != "running":
                raise SystemExit(f"{self.name} exited:\n{self.logs()}")
            time.sleep(0.5)
        raise SystemExit(f"{self.name} not ready after {timeout} s:\n{self.logs()}")

    def state(self) -> str:
        return self._podman("inspect", "--format={{.State.Status}}", self.name).strip()

    def logs(self) -> str:
        return self._podman("logs", self.name)[-4000:]

    def stop_in_time(self, image: str) -> None:
        """SIGTERM with docker's and podman's default grace period: it must stop within it."""
        began = time.monotonic()
        self._podman("stop", f"--time={GRACE_SECONDS}", self.name)
        took = time.monotonic() - began
        code = self._podman("inspect", "--format={{.State.ExitCode}}", self.name).strip()
        check(
            took < GRACE_SECONDS,
            f"{image}: SIGTERM stopped it in {took:.1f} s (exit {code})",
            self.logs(),
        )

    def remove(self) -> None:
        podman(self.env, "rm", "-f", self.name)

    def _podman(self, *args: str) -> str:
        return podman(self.env, *args)[1]


def idle_connection_open(url: str, idle: float) -> bool:
    """Whether the server still holds a kept-alive connection after `idle` seconds of quiet
    (uvicorn closes it after its keep-alive timeout: 5 s by default, 75 s for make serve)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/livez")
        connection.getresponse().read()
        time.sleep(idle)
        connection.sock.setblocking(False)
        try:
            return connection.sock.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:  # nothing to read and not closed
            return True
        except ConnectionError:
            return False
    finally:
        connection.close()
