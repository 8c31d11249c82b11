"""`make serve`: validate settings (one clear line on error), then exec `bentoml serve`."""

from __future__ import annotations

import os
import sys

from .settings import SettingsError, load_settings


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
            "--timeout-graceful-shutdown",
            str(settings.shutdown_timeout),
        ],
    )


if __name__ == "__main__":
    main()
