"""The process's heaps held in check while models serve: Python's collector settled after
the models load, glibc's free pages handed back to the system every few seconds."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
import time
from functools import cache
from typing import Any

__all__ = ["TRIM_SECONDS", "YOUNG_THRESHOLD", "Trimmer", "release", "settle"]

log = logging.getLogger(__name__)

TRIM_SECONDS = 10.0
"""How often the heaps' free pages go back to the system (glibc's malloc_trim) while models
serve. Batches of ever-new shapes leave free holes in glibc's heaps that it keeps: under
mixed-length load the process grew by about 250 MB in 10 minutes and kept growing; trimmed
every 10 s it stayed flat (docs/performance.md, "Memory")."""

YOUNG_THRESHOLD = 10_000
"""Allocations between two collections of the youngest generation (Python's default: 700).
A request in flight holds a few hundred objects (its task, scope, futures, body); at 700,
every one-sentence request triggered a collection that walked the requests in flight, so
the collector's cost per request grew with the concurrency (profiled: docs/performance.md)."""

_default_threshold = gc.get_threshold()


@cache
def _libc() -> Any | None:
    """glibc, or None elsewhere (musl, macOS): then nothing is trimmed."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 (glibc's own: other C libraries lack it)
    except (OSError, AttributeError):
        return None
    return libc


class Trimmer:
    """A daemon thread that calls malloc_trim every `seconds` until stopped (nothing where
    the C library is not glibc). `trims` counts the calls made."""

    def __init__(self, seconds: float = TRIM_SECONDS) -> None:
        self.seconds = seconds
        self.trims = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="malloc-trim", daemon=True)

    def start(self) -> None:
        if _libc() is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        libc = _libc()
        assert libc is not None  # started only on glibc
        while not self._stop.wait(self.seconds):
            libc.malloc_trim(0)
            self.trims += 1


def settle() -> Trimmer:
    """After the models loaded: collect once, freeze what survives (the models, tokenizers
    and libraries: objects no request frees) so that later collections never walk it
    again, collect the youngest generation every YOUNG_THRESHOLD allocations, and start
    trimming the heaps. Returns the running Trimmer, for release().

    A full collection over the loaded libraries took about 0.3 s holding the GIL (every
    request and every batch stalled meanwhile), every few seconds under load; after the
    freeze it walks only what requests left behind.
    """
    began = time.perf_counter()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *_default_threshold[1:])
    took = time.perf_counter() - began
    log.info("heap settled: %d objects frozen in %.2fs", gc.get_freeze_count(), took)
    trimmer = Trimmer()
    trimmer.start()
    return trimmer


def release(trimmer: Trimmer) -> None:
    """The models stopped: `trimmer` stops, and what settle() froze may be collected
    again (a process that starts another set of models, as the tests do, would otherwise
    keep every old one)."""
    trimmer.stop()
    gc.unfreeze()
    gc.set_threshold(*_default_threshold)
