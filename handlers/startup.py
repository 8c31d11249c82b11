"""Start-up failures: a model that cannot load stops the whole server, non-zero, in one line."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import tempfile
from pathlib import Path

__all__ = [
    "EXIT_START_FAILED",
    "exit_nonzero_after_a_worker_failed",
    "failure_line",
    "stop_server",
]

log = logging.getLogger(__name__)

EXIT_START_FAILED = 3  # uvicorn's own code for "Application startup failed"


def failure_line(exc: Exception) -> str:
    """The one line that ends a failed start: a setting only checkable once the model is
    loaded (settings.SettingsError), or a model that could not be loaded."""
    from handlers.settings import SettingsError

    kind = "configuration error" if isinstance(exc, SettingsError) else "start-up failed"
    return f"{kind}: {exc}"


def _marker(server_pid: int) -> Path:
    return Path(tempfile.gettempdir()) / f"embedding-service-{server_pid}.start-failed"


def stop_server(line: str) -> None:
    """In a BentoML worker whose start-up failed: log `line`, then stop the whole server
    (the arbiter, this worker's parent) instead of letting it respawn the worker forever,
    and exit. The arbiter then exits with EXIT_START_FAILED (see
    exit_nonzero_after_a_worker_failed). Outside a BentoML worker (a test's in-process
    service) it only logs; the caller re-raises."""
    from bentoml import server_context

    log.critical("%s", line)
    if server_context.worker_index is None:
        return
    parent = os.getppid()
    _marker(parent).write_text(line + "\n")
    os.kill(parent, signal.SIGTERM)
    logging.shutdown()
    os._exit(EXIT_START_FAILED)


def exit_nonzero_after_a_worker_failed() -> None:
    """Called once where the server starts (service.py, imported by BentoML's arbiter and by
    each worker): when this process exits after a worker of its own failed to start, its
    exit status is EXIT_START_FAILED, not the 0 of a requested stop."""
    marker = _marker(os.getpid())

    def check() -> None:
        if marker.is_file():
            marker.unlink(missing_ok=True)
            os._exit(EXIT_START_FAILED)

    atexit.register(check)
