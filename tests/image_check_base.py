"""The host side of `make image-test`: shell helpers, tools, container settings, the base image."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "image-test"
BASE_TAG = "docker.io/library/python:3.11-slim"  # what the bentofiles and Dockerfile name
TOOLS = {"buildah": "buildah", "podman": "podman", "debootstrap": "debootstrap", "runc": "runc"}


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


def check(condition: bool, what: str, detail: str = "") -> None:
    say(f"{'ok' if condition else 'FAILED'}: {what}")
    if not condition:
        raise SystemExit(f"image test failed: {what}\n{detail}")


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
