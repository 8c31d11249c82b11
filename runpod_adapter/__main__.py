"""`python -m runpod_adapter`: load settings and engines once, then run the RunPod worker."""

from __future__ import annotations

import logging
import os
import signal
import time


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    """SIGTERM unwinds like SIGINT (SystemExit), so the engines are stopped on the way out.

    The SDK's worker loop installs its own graceful SIGTERM handler; uvicorn (under
    `--rp_serve_api`) shuts down and then re-raises the signal to this handler.
    """
    raise SystemExit(0)


def main() -> None:
    """Exit non-zero with one line on a bad configuration; otherwise serve until stopped."""
    began = time.perf_counter()
    from handlers.settings import settings_or_exit

    settings = settings_or_exit()

    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The SDK logs every handler output at its default DEBUG level (whole embedding
    # vectors); INFO unless the operator asks otherwise. Read when runpod is imported.
    os.environ.setdefault("RUNPOD_LOG_LEVEL", "INFO")
    from handlers.compose import build_core

    core = build_core(settings)  # starts importing Infinity while the SDK is imported
    import runpod

    from handlers.engine.loading import ModelLoadError
    from handlers.settings_error import SettingsError
    from handlers.startup import EXIT_START_FAILED, failure_line

    from .engine_loop import EngineLoop

    engines = EngineLoop(core)
    try:
        engines.start()
    except (ModelLoadError, SettingsError) as exc:
        logging.getLogger("runpod_adapter").critical("%s", failure_line(exc))
        raise SystemExit(EXIT_START_FAILED) from None
    logging.getLogger("runpod_adapter").info(
        "engines ready %.1fs after start; max concurrency %d",
        time.perf_counter() - began,
        settings.runpod_max_concurrency,
    )
    try:
        runpod.serverless.start(
            {
                "handler": engines.handler,
                "concurrency_modifier": lambda _current: settings.runpod_max_concurrency,
            }
        )
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut stop()
        engines.stop()


if __name__ == "__main__":
    main()
