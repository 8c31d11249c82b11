"""BentoML's server processes as the service uses them: a worker's failed start stops them all."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import tempfile
from pathlib import Path

from bentoml import server_context

from handlers.startup import EXIT_START_FAILED

__all__ = ["exit_nonzero_after_a_worker_failed", "in_worker", "stop_server"]

log = logging.getLogger(__name__)

# `bentoml serve` is an arbiter (circus, BentoML's fork `kantoku`) and its worker processes,
# each of which imports service.py. Two facts of BentoML 1.4 shape what follows
# (tests/contract/test_bentoml.py holds them to the pinned version):
# - a worker that exits is spawned again, whatever its exit status, unless
#   BENTOML_CONTAINERIZED is set (bentoml/serving.py, create_watcher: respawn), so a model
#   that cannot load would be retried forever;
# - the arbiter stops gracefully on SIGTERM and `bentoml serve` then exits 0: nothing carries
#   a worker's exit status to the arbiter's. (With BENTOML_CONTAINERIZED, the arbiter does
#   quit when its worker exits, but by raising "No active process found for watcher.": a
#   traceback and status 1.)
# BentoML has no public hook on a worker's exit, so the failing worker itself stops the
# arbiter (SIGTERM, a graceful stop) after leaving a marker file, and the arbiter's exit
# hook turns that stop's status into EXIT_START_FAILED.


def in_worker() -> bool:
    """Whether this process is a BentoML server worker (not the arbiter, nor a process
    that imported the service itself, such as a test)."""
    return server_context.worker_index is not None


def _marker(server_pid: int) -> Path:
    return Path(tempfile.gettempdir()) / f"embedding-service-{server_pid}.start-failed"


def stop_server(line: str) -> None:
    """In a BentoML worker whose start-up failed: log `line`, then stop the whole server
    (the arbiter, this worker's parent) instead of letting it respawn the worker forever,
    and exit. The arbiter then exits with EXIT_START_FAILED (see
    exit_nonzero_after_a_worker_failed). Outside a BentoML worker (a test's in-process
    service) it only logs; the caller re-raises."""
    log.critical("%s", line)
    if not in_worker():
        return
    parent = os.getppid()
    _marker(parent).write_text(line + "\n")
    os.kill(parent, signal.SIGTERM)
    logging.shutdown()
    os._exit(EXIT_START_FAILED)


def exit_nonzero_after_a_worker_failed() -> None:
    """Called once where the server starts (service.py, imported by the arbiter and by each
    worker): when the arbiter exits after a worker of its own failed to start, its exit
    status is EXIT_START_FAILED, not the 0 of a requested stop. A no-op in a worker."""
    if in_worker():
        return
    marker = _marker(os.getpid())
    marker.unlink(missing_ok=True)  # left by an earlier process that had this pid

    def check() -> None:
        if marker.is_file():
            marker.unlink(missing_ok=True)
            os._exit(EXIT_START_FAILED)

    atexit.register(check)
