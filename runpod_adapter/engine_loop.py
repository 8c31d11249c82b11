"""A private event loop in a thread that owns the engines; SDK handlers in any loop call it."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from handlers.errors import ErrorKind, ServiceError, model_dead

from .handler import Dispatcher, error_output, handle

__all__ = ["EngineLoop"]

log = logging.getLogger(__name__)

EXIT_DEAD = 70  # EX_SOFTWARE: a model died; the platform should replace this worker
DEAD = "model dead"  # the cancel message of jobs failed because a model died


class Core(Dispatcher, Protocol):
    """What EngineLoop needs of handlers.core.dispatch.Core."""

    @property
    def alive(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class EngineLoop:
    """Runs `core` (its engines and image client) in one event loop on a daemon thread.

    The RunPod SDK runs handlers in loops it creates and closes itself: `asyncio.run` per
    worker run, per `--test_input` job, uvicorn's loop for `--rp_serve_api`. Infinity's
    engines must start, serve and stop in one loop, and must be stopped (their batch
    threads are not daemons), so they live here, independent of whichever loop the SDK
    uses: `start()` before the SDK starts, `stop()` after it returns or exits.
    """

    def __init__(
        self,
        core: Core,
        on_dead: Callable[[], None] = lambda: _exit_soon(EXIT_DEAD),
        check_every: float = 1.0,
    ) -> None:
        self.core = core
        self._on_dead = on_dead
        self._check_every = check_every
        self._jobs: set[asyncio.Task[Any]] = set()
        self._watch: asyncio.Task[None] | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="engine-loop", daemon=True
        )
        self._started = False

    def _run(self, make: Callable[[], Awaitable[Any]], timeout: float | None = None) -> Any:
        async def call() -> Any:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout)

    def start(self) -> None:
        """Start the loop thread and the core in it; on failure stop what started.

        Interrupted (SIGTERM/SIGINT raise SystemExit/KeyboardInterrupt here) while models
        load, the start is cancelled and whatever already started is stopped, so no
        engine thread outlives the process.

        Raises:
            Exception: whatever the core's start raised (e.g. a model failed to load).
        """
        self._thread.start()
        self._started = True
        future = asyncio.run_coroutine_threadsafe(self.core.start(), self._loop)
        try:
            future.result()
        except BaseException:
            future.cancel()
            self.stop()
            raise
        self._loop.call_soon_threadsafe(self._start_watch)

    def _start_watch(self) -> None:
        self._watch = self._loop.create_task(self._watch_liveness())

    async def _watch_liveness(self) -> None:
        """A dead model fails the jobs in flight with 503, then the worker exits non-zero
        so the platform replaces it (it would only fail every job it takes)."""
        while self.core.alive:
            await asyncio.sleep(self._check_every)
        log.critical("a model is dead: failing %d jobs in flight and exiting", len(self._jobs))
        for job in list(self._jobs):
            job.cancel(DEAD)
        self._on_dead()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the core (engines, image client) in its loop, then the loop. Idempotent."""
        if not self._started:
            return
        self._started = False
        if self._watch is not None:
            self._loop.call_soon_threadsafe(self._watch.cancel)
        try:
            self._run(self.core.stop, timeout)
            log.info("engines stopped")
        except Exception:
            log.exception("stopping the engines failed")
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._loop.close()

    async def handler(self, job: dict[str, Any]) -> dict[str, Any] | list[dict[str, Any]]:
        """The RunPod handler: runs `handle(job, core)` in the engine loop, from any loop.
        Cancelling it (the SDK cancelled the job) cancels the work in the engine loop."""
        try:
            future = asyncio.run_coroutine_threadsafe(self._tracked(job), self._loop)
        except RuntimeError:  # the engine loop is closed: the worker is shutting down
            return error_output(
                ServiceError(ErrorKind.NOT_READY, "The worker is shutting down. Retry.")
            )
        return await asyncio.wrap_future(future)

    async def _tracked(self, job: dict[str, Any]) -> dict[str, Any] | list[dict[str, Any]]:
        task = asyncio.current_task()
        assert task is not None
        self._jobs.add(task)
        try:
            return await handle(job, self.core)
        except asyncio.CancelledError as cancel:
            if cancel.args != (DEAD,):
                raise
            return error_output(model_dead())
        finally:
            self._jobs.discard(task)


def _exit_soon(code: int, grace: float = 3.0) -> None:
    """Exit the process after `grace` seconds, time for the SDK to send the failed jobs."""
    timer = threading.Timer(grace, os._exit, (code,))
    timer.daemon = True
    timer.start()
