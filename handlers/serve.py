"""`make serve` and the image's command: check settings, then exec `bentoml serve`."""

from __future__ import annotations

import os
import sys

from handlers.settings import Settings, settings_or_exit

# Idle keep-alive connections stay open longer than clients and load balancers keep theirs
# (httpx 5 s, AWS ALB 60 s), so the client side always closes an idle connection first
# and never sends a request into one the server is closing (uvicorn's default is 5 s).
KEEPALIVE_SECONDS = 75


def command(settings: Settings) -> list[str]:
    """The `bentoml serve` command line: host, port, keep-alive and graceful-shutdown limit
    (BentoML 1.4 takes the last two as command-line flags only)."""
    return [
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
    ]


def main() -> None:
    argv = command(settings_or_exit())
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
