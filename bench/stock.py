"""Infinity's own server in a venv of its own (its `server` extra pins click below runpod's)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["stock_command"]

VENV = Path(__file__).parent / ".stock-venv"
# pillow and aiohttp: Infinity's image inputs (data URIs included) need both; its `audio`
# extra (soundfile<0.13) its audio inputs
PACKAGES = ["torch==2.13.0", "infinity-emb[server,torch,audio]==0.0.78", "pillow", "aiohttp"]


def ensure_venv() -> Path:
    """Create bench/.stock-venv with stock Infinity once (again when PACKAGES change);
    returns its infinity_emb CLI."""
    cli, stamp = VENV / "bin" / "infinity_emb", VENV / "packages.txt"
    if not cli.exists() or not stamp.is_file() or stamp.read_text() != " ".join(PACKAGES):
        print(f"installing stock Infinity into {VENV} (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, *PACKAGES], check=True)
        stamp.write_text(" ".join(PACKAGES))
    return cli


def stock_command(model: str, served_id: str, batch_size: int) -> list[str]:
    """`infinity_emb v2` with its defaults (torch engine) except what the bench must pin:
    the model, port, /v1 prefix, batch size as ours, and no warm-up (ours has none)."""
    return [
        str(ensure_venv()),
        "v2",
        "--model-id",
        model,
        "--served-model-name",
        served_id,
        "--batch-size",
        str(batch_size),
        "--engine",
        "torch",
        "--no-model-warmup",
        "--url-prefix",
        "/v1",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
    ]
