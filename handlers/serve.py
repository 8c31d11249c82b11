"""`make serve`: validate settings (one clear line on error), then exec `bentoml serve`."""

from __future__ import annotations

import os
import sys

from .settings import SettingsError, load_settings

# Idle keep-alive connections stay open longer than clients and load balancers keep theirs
# (httpx 5 s, AWS ALB 60 s), so the client side always closes an idle connection first
# and never sends a request into one the server is closing (uvicorn's default is 5 s).
KEEPALIVE_SECONDS = 75


def main() -> None:
    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.exit(f"configuration error: {exc}")
    os.execvp(
        sys.executable,
        [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            "service:EmbeddingService",
            "--host",
            settings.infinity_host,
            "--port",
            str(settings.infinity_port),
            "--timeout-keep-alive",
            str(KEEPALIVE_SECONDS),
            "--timeout-graceful-shutdown",
            str(settings.shutdown_timeout),
        ],
    )


if __name__ == "__main__":
    main()
