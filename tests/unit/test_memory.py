"""The heap settled once the models are loaded: what was loaded is frozen (never walked
again), the youngest generation collected less often, free heap pages trimmed on a clock;
all released when the models stop."""

from __future__ import annotations

import gc
import threading

import pytest

from handlers import memory


@pytest.fixture
def collector():
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_settle_freezes_what_was_loaded_and_collects_the_garbage_first(collector):
    loaded = [Node() for _ in range(100)]
    garbage = Node()
    del garbage  # unreachable before settle(): collected, not frozen
    trimmer = memory.settle()
    try:
        assert gc.get_freeze_count() >= len(loaded)
        assert gc.get_threshold()[0] == memory.YOUNG_THRESHOLD
        assert gc.collect() == 0  # nothing left to collect, and the frozen objects skipped
        tracked = {id(o) for o in gc.get_objects()}
        assert not any(id(node) in tracked for node in loaded)
    finally:
        memory.release(trimmer)


def test_cycles_made_after_settle_are_still_collected(collector):
    trimmer = memory.settle()
    try:
        Node()
        assert gc.collect() >= 1
    finally:
        memory.release(trimmer)


def test_release_gives_the_frozen_objects_back_and_stops_trimming(collector):
    python_default = gc.get_threshold()
    kept = [Node()]
    trimmer = memory.settle()
    assert any(t.name == "malloc-trim" for t in threading.enumerate())  # glibc here
    del kept  # the models stopped: garbage now, but frozen
    assert gc.collect() == 0
    memory.release(trimmer)
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == python_default
    assert gc.collect() >= 1
    assert not any(t.name == "malloc-trim" for t in threading.enumerate())


def test_the_trimmer_trims_on_its_clock_until_stopped():
    trimmer = memory.Trimmer(seconds=0.01)
    trimmer.start()
    while trimmer.trims < 3:
        threading.Event().wait(0.01)
    trimmer.stop()
    stopped_at = trimmer.trims
    threading.Event().wait(0.05)
    assert trimmer.trims == stopped_at
