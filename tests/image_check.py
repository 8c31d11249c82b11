"""`make image-test`: build the CPU, GPU and RunPod images here, no Docker daemon; smoke-test each.

Run as root on a Debian machine: buildah, podman, debootstrap and runc are installed with
apt-get when missing. Registries other than PyPI and Debian's are unreachable here, so the
`python:3.11-slim` base is a stand-in made with debootstrap (bookworm's python3.11, as the
official image is bookworm's Debian with Python 3.11), and for the CPU image the CPU wheel
index is replaced by a loopback stand-in serving torch's CPU wheel from pip's local
find-links folder. Every other step is the one the Makefile's image targets (and the README)
run. Prints each image's size and build time and every smoke check; exits non-zero on the
first failure.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import http.server
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "image-test"
BASE_TAG = "docker.io/library/python:3.11-slim"  # what the bentofiles and Dockerfile name
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
IMAGES = {
    "cpu": "embedding-service-cpu:test",
    "gpu": "embedding-service:test",
    "runpod": "embedding-worker:test",
}
TOOLS = {"buildah": "buildah", "podman": "podman", "debootstrap": "debootstrap", "runc": "runc"}
TEXTS = ["a red dress", "blue running shoes for the trail"]
GRACE_SECONDS = 10  # docker's and podman's default stop timeout
IDLE_SECONDS = 8  # past uvicorn's default keep-alive (5 s), within make serve's (75 s)
MAKE_SERVE = ("python", "-m", "handlers.serve")  # what `make serve` runs
BENTO_SRC = "/home/bentoml/bento/src"  # the bento's source folder in BentoML's images
TARGET_GB = {"cpu": 1.8, "gpu": 5.0, "runpod": 5.0}  # issue targets, checked below


def say(message: str) -> None:
    print(f"[image-test] {message}", flush=True)


def run(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run a command, its output streamed; raise on a non-zero exit."""
    return subprocess.run(args, check=True, env={**os.environ, **(env or {})}, **kwargs)


def podman(env: dict[str, str], *args: str, timeout: float = 120) -> tuple[int, str]:
    """`podman ARGS` in this test's container settings: (exit code, stdout + stderr)."""
    done = subprocess.run(
        ["podman", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def ensure_tools() -> None:
    missing = [package for tool, package in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        say(f"installing {' '.join(missing)}")
        run("apt-get", "update", "-qq")
        run("apt-get", "install", "-y", "-qq", *missing, env={"DEBIAN_FRONTEND": "noninteractive"})


def container_env() -> dict[str, str]:
    """containers.conf and storage.conf of this test: runc (crun refuses this machine's
    hybrid cgroups), ulimits within the current hard limits (no CAP_SYS_RESOURCE here),
    a private image store under build/."""
    WORK.mkdir(parents=True, exist_ok=True)
    limits = []
    # runc refuses an nproc limit near the hard one here ("error setting rlimit type 6")
    caps = (("nofile", resource.RLIMIT_NOFILE, 65536), ("nproc", resource.RLIMIT_NPROC, 32768))
    for name, limit, cap in caps:
        hard = resource.getrlimit(limit)[1]
        value = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
        limits.append(f'"{name}={value}:{value}"')
    (WORK / "containers.conf").write_text(
        "[containers]\n"
        f"default_ulimits = [{', '.join(limits)}]\n"
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
    )
    (WORK / "storage.conf").write_text(
        "[storage]\n"
        'driver = "overlay"\n'
        f'graphroot = "{WORK / "storage"}"\n'
        f'runroot = "{WORK / "run"}"\n'
    )
    return {
        "CONTAINERS_CONF": str(WORK / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(WORK / "storage.conf"),
        "BUILDAH_ISOLATION": "chroot",
    }


def apt_mirror() -> str:
    """The Debian mirror the host's apt uses for bookworm (deb822 or one-line sources)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in filter(Path.is_file, sources):
        for block in source.read_text().split("\n\n"):
            fields = dict(line.split(":", 1) for line in block.splitlines() if ": " in line)
            uris, suites = fields.get("URIs", "").split(), fields.get("Suites", "").split()
            if "bookworm" in suites and uris and "security" not in uris[0]:
                return uris[0]
            for line in block.splitlines():
                words = line.split()
                if words[:1] == ["deb"] and "bookworm" in words and "security" not in line:
                    return next(w for w in words[1:] if "://" in w)
    return "http://deb.debian.org/debian"


def make_base(env: dict[str, str]) -> None:
    """The python:3.11-slim stand-in: bookworm minbase with python3.11, venv and pip, `python`
    and `pip` on PATH, no PEP 668 marker, and the host's locally added CA certificates
    (HTTPS from inside a build goes through the same authorities as the host's)."""
    if podman(env, "image", "exists", BASE_TAG)[0] == 0:
        return
    root = WORK / "base-root"
    shutil.rmtree(root, ignore_errors=True)
    packages = "ca-certificates,python3.11,python3.11-venv,python3-pip,python-is-python3"
    say(f"debootstrap bookworm ({packages}) from {apt_mirror()}")
    run(
        "debootstrap",
        "--variant=minbase",
        f"--include={packages}",
        "bookworm",
        str(root),
        apt_mirror(),
        stdout=subprocess.DEVNULL,
    )
    for marker in root.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    local_cas = root / "usr/local/share/ca-certificates"
    for certificate in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copy(certificate, local_cas / certificate.name)
    run("chroot", str(root), "update-ca-certificates", stdout=subprocess.DEVNULL)
    # as the official slim image: no apt lists or archives, no documentation or locales
    for folder in (
        "var/cache/apt/archives",
        "var/lib/apt/lists",
        "usr/share/doc",
        "usr/share/locale",
        "usr/share/man",
        "usr/share/info",
    ):
        shutil.rmtree(root / folder, ignore_errors=True)
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    changes = [
        f"ENV SSL_CERT_FILE={bundle}",
        f"ENV PIP_CERT={bundle}",
        f"ENV REQUESTS_CA_BUNDLE={bundle}",
        "ENV LANG=C.UTF-8",
        'CMD ["python3"]',
    ]
    tarball = WORK / "base.tar"
    run("tar", "-C", str(root), "-cf", str(tarball), ".")
    run(
        "podman",
        "import",
        *[f"--change={c}" for c in changes],
        str(tarball),
        BASE_TAG,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    tarball.unlink()
    shutil.rmtree(root)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base's name)
        pass


class WheelIndex:
    """A PEP 503 index on 127.0.0.1 serving torch's CPU wheel from pip's local find-links
    folder: the stand-in for the CPU wheel index, which is unreachable here."""

    def __init__(self) -> None:
        links = os.environ.get("PIP_FIND_LINKS", "/opt/wheels").split()
        wheels = [w for folder in links for w in Path(folder).glob("torch-2.13.0+cpu-*.whl")]
        if not wheels:
            raise SystemExit(f"no torch 2.13.0 CPU wheel in {links} for the index stand-in")
        self.root = WORK / "cpu-index"
        page = self.root / "simple" / "torch"
        page.mkdir(parents=True, exist_ok=True)
        for wheel in wheels:
            with contextlib.suppress(FileExistsError):
                (page / wheel.name).symlink_to(wheel)
        anchors = "".join(f'<a href="{w.name}">{w.name}</a>\n' for w in wheels)
        (page / "index.html").write_text(f"<html><body>\n{anchors}</body></html>\n")
        handler = functools.partial(_QuietHandler, directory=self.root)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"

    def __enter__(self) -> WheelIndex:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


def build_images(env: dict[str, str], index: WheelIndex) -> dict[str, float]:
    """The Makefile's image targets, as the README gives them, with buildah: seconds each."""
    cpu_bentofile = WORK / "bentofile.cpu.yaml"
    cpu_bentofile.write_text(
        (ROOT / "deploy" / "bentofile.cpu.yaml").read_text().replace(CPU_INDEX, index.url)
    )
    make = {
        "IMAGE_TAG": "test",
        "IMAGE_BACKEND": "buildah",
        "IMAGE_OPTS": "--opt network=host",
        "IMAGE_BUILD": "buildah bud --network host",
        "CPU_BENTOFILE": str(cpu_bentofile),
    }
    env = {**env, "BENTOML_HOME": str(WORK / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    seconds = {}
    for name in IMAGES:
        began = time.monotonic()
        say(f"make image-{name}")
        run("make", f"image-{name}", *[f"{k}={v}" for k, v in make.items()], env=env, cwd=ROOT)
        seconds[name] = time.monotonic() - began
        say(f"{IMAGES[name]} built in {seconds[name]:.0f} s")
    return seconds


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


def cosine_min(a: list[list[float]], b: list[list[float]]) -> float:
    x, y = np.array(a), np.array(b)
    return float(((x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)).min())


def embeddings(url: str, texts: list[str], timeout: float = 60) -> list[list[float]]:
    body = {"model": "sentence-transformers/all-MiniLM-L6-v2", "input": texts}
    reply = httpx.post(f"{url}/v1/embeddings", json=body, timeout=timeout)
    if reply.status_code != 200:
        raise SystemExit(f"embeddings answered {reply.status_code}: {reply.text[:500]}")
    return [item["embedding"] for item in reply.json()["data"]]


def reference() -> list[list[float]]:
    """What `make serve` (python -m handlers.serve, the bundled model) gives for TEXTS."""
    from tests.servers import ServiceProcess

    with ServiceProcess({}) as proc:
        return embeddings(proc.url, TEXTS)


def check(condition: bool, what: str, detail: str = "") -> None:
    say(f"{'ok' if condition else 'FAILED'}: {what}")
    if not condition:
        raise SystemExit(f"image test failed: {what}\n{detail}")


def bad_setting_exits(env: dict[str, str], image: str, *command: str) -> None:
    code, out = podman(
        env, "run", "--rm", "--network=host", "--env=BATCH_SIZES=abc", image, *command
    )
    lines = [line for line in out.splitlines() if "configuration error: BATCH_SIZES='abc'" in line]
    check(
        code != 0 and len(lines) == 1 and "Traceback" not in out,
        f"{image}: BATCH_SIZES=abc exits {code} with one line",
        out,
    )


def smoke_http(env: dict[str, str], image: str, backend: str, expected: list) -> float:
    """The image's own command (BentoML's `bentoml serve $BENTO_PATH`): /readyz, /v1/models,
    an embedding equal to make serve's, uvicorn's 5 s keep-alive, SIGTERM in time with an
    in-flight request answered, a bad setting's one line. Then `python -m handlers.serve`
    from the bento's source folder, as docs/images.md gives it: ready, with make serve's 75 s
    keep-alive. Returns the seconds to /readyz of the image's own command."""
    container = Container(env, image)
    try:
        ready = container.wait_ready()
        check(True, f"{image}: /readyz 200 after {ready:.1f} s")
        check(
            not idle_connection_open(container.url, IDLE_SECONDS),
            f"{image}: its own command closes a connection idle for {IDLE_SECONDS} s "
            "(BentoML's default keep-alive)",
        )
        (card,) = httpx.get(f"{container.url}/v1/models", timeout=10).json()["data"]
        check(card["backend"] == backend, f"{image}: /v1/models says backend {card['backend']}")
        similarity = cosine_min(embeddings(container.url, TEXTS), expected)
        check(similarity >= 0.9999, f"{image}: embeddings cosine {similarity:.6f} to make serve's")
        answered: dict[str, object] = {}

        def slow_request() -> None:
            try:
                answered["vectors"] = embeddings(container.url, ["a long sentence " * 20] * 192)
            except BaseException as exc:  # reported below
                answered["error"] = exc

        worker = threading.Thread(target=slow_request)
        worker.start()
        time.sleep(0.3)
        container.stop_in_time(image)
        worker.join(60)
        check(
            "vectors" in answered,
            f"{image}: the in-flight request was answered",
            f"{answered.get('error')}\n{container.logs()}",
        )
    finally:
        container.remove()
    bad_setting_exits(env, image)
    serve = Container(env, image, *MAKE_SERVE, workdir=BENTO_SRC)
    try:
        began = serve.wait_ready()
        check(True, f"{image}: `python -m handlers.serve` /readyz 200 after {began:.1f} s")
        check(
            idle_connection_open(serve.url, IDLE_SECONDS),
            f"{image}: `python -m handlers.serve` keeps a connection idle for {IDLE_SECONDS} s",
        )
        serve.stop_in_time(image)
    finally:
        serve.remove()
    return round(ready, 1)


def smoke_runpod(env: dict[str, str], image: str, expected: list) -> None:
    """--test_input, and /runsync on --rp_serve_api; a bad setting's one line."""
    from tests.servers import free_port

    job = {"model": "sentence-transformers/all-MiniLM-L6-v2", "input": TEXTS}
    test_input = ["--test_input", json.dumps({"input": job})]
    code, out = podman(
        env,
        "run",
        "--rm",
        "--network=host",
        image,
        "python",
        "-m",
        "runpod_adapter",
        *test_input,
        timeout=300,
    )
    check(
        code == 0 and "embedding" in out,
        f"{image}: --test_input answers (exit {code})",
        out,
    )
    port = free_port()
    serve = ["--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", str(port)]
    container = Container(env, image, "python", "-m", "runpod_adapter", *serve, port=port)
    try:
        began, reply = time.monotonic(), None
        while time.monotonic() - began < 300 and container.state() == "running":
            with contextlib.suppress(httpx.HTTPError):
                reply = httpx.post(f"{container.url}/runsync", json={"input": job}, timeout=60)
                if reply.status_code == 200:
                    break
            time.sleep(0.5)
        body = reply.json() if reply is not None and reply.status_code == 200 else {}
        check(body.get("status") == "COMPLETED", f"{image}: /runsync COMPLETED", str(body))
        vectors = [item["embedding"] for item in body["output"]["data"]]
        similarity = cosine_min(vectors, expected)
        check(similarity >= 0.9999, f"{image}: /runsync cosine {similarity:.6f} to make serve's")
        container.stop_in_time(image)
    finally:
        container.remove()
    bad_setting_exits(env, image, "python", "-m", "runpod_adapter")


def no_installer_cache(env: dict[str, str], image: str) -> None:
    """Nothing left to prune: no pip or uv cache in the image (uv runs with UV_NO_CACHE in
    the bentos, pip with PIP_NO_CACHE_DIR in the RunPod image)."""
    script = "for d in /root/.cache /home/bentoml/.cache; do test -e $d && du -sh $d; done; true"
    code, out = podman(
        env, "run", "--rm", "--user=root", "--entrypoint=/bin/sh", image, "-c", script
    )
    check(code == 0 and not out.strip(), f"{image}: no installer cache", out)


def size_gb(env: dict[str, str], image: str) -> float:
    done = run(
        "podman",
        "image",
        "inspect",
        "--format={{.Size}}",
        image,
        env=env,
        capture_output=True,
        text=True,
    )
    return int(done.stdout.strip()) / 1e9


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("make image-test runs as root (buildah, podman, debootstrap)")
    ensure_tools()
    env = container_env()
    began = time.monotonic()
    make_base(env)
    say(f"python:3.11-slim stand-in ready in {time.monotonic() - began:.0f} s")
    with WheelIndex() as index:
        seconds = build_images(env, index)
    expected = reference()
    ready = {
        "cpu": smoke_http(env, IMAGES["cpu"], "optimum", expected),
        "gpu": smoke_http(env, IMAGES["gpu"], "torch", expected),
    }
    smoke_runpod(env, IMAGES["runpod"], expected)
    for image in IMAGES.values():
        no_installer_cache(env, image)
    figures = {}
    for name, image in IMAGES.items():  # every figure first, then the targets
        size = size_gb(env, image)
        say(f"{image}: {size:.2f} GB, built in {seconds[name]:.0f} s")
        figures[image.split(":")[0]] = {
            "size_gb": round(size, 2),
            "target_gb": TARGET_GB[name],
            "build_s": round(seconds[name]),
            "ready_s": ready.get(name),
        }
    for name, image in IMAGES.items():
        size = figures[image.split(":")[0]]["size_gb"]
        check(size <= TARGET_GB[name], f"{image}: {size:.2f} GB <= {TARGET_GB[name]} GB")
    record(figures)
    say("all images built and passed")


def record(figures: dict) -> None:
    """bench/images.json, and BENCHMARKS.md re-rendered with its Images section (the
    benchmark's own figures and plot stay those of its last run)."""
    from bench import report

    machine = f"{os.cpu_count()} cores, {platform.machine()}, no GPU"
    images = {"date": time.strftime("%Y-%m-%d"), "machine": machine, "images": figures}
    path = ROOT / "bench" / "images.json"
    path.write_text(json.dumps(images, indent=2) + "\n")
    results = json.loads((ROOT / "bench" / "results.json").read_text())
    (ROOT / "BENCHMARKS.md").write_text(report.render(results, path))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
