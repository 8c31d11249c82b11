"""The RunPod worker's engine loop: one event loop thread owns the core, from any caller."""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import Any

import pytest

from handlers.core.table import OPERATIONS
from runpod_adapter.engine_loop import EngineLoop


class LoopCore:
    """Stands in for the core (handlers.core.dispatch.Core): records the thread of each call."""

    alive = True
    routes = {op.path: op for op in OPERATIONS}

    def __init__(self, fail_start: bool = False) -> None:
        self.events: list[tuple[str, str]] = []
        self.fail_start = fail_start

    async def start(self) -> None:
        self.events.append(("start", threading.current_thread().name))
        if self.fail_start:
            raise RuntimeError("model failed to load")

    async def stop(self) -> None:
        self.events.append(("stop", threading.current_thread().name))

    async def dispatch(self, route: str, body: Any = None) -> dict[str, Any]:
        self.events.append((route, threading.current_thread().name))
        return {"object": "list", "data": []}

    def classifier(self, model: Any) -> bool:
        return False


def test_engine_loop_runs_service_in_one_thread_from_any_caller_loop():
    core = LoopCore()
    engines = EngineLoop(core)
    engines.start()
    try:
        # Two separate asyncio.run calls, as the SDK does per --test_input job or run.
        job = {"input": {"openai_route": "/v1/models"}}
        assert asyncio.run(engines.handler(job)) == {"object": "list", "data": []}
        assert asyncio.run(engines.handler(job)) == {"object": "list", "data": []}
    finally:
        engines.stop()
    engines.stop()  # idempotent
    assert [name for name, _ in core.events] == ["start", "/v1/models", "/v1/models", "stop"]
    assert {thread for _, thread in core.events} == {"engine-loop"}
    assert not engines._thread.is_alive()


def test_engine_loop_after_stop_answers_503_output():
    engines = EngineLoop(LoopCore())
    engines.start()
    engines.stop()
    out = asyncio.run(engines.handler({"input": {"openai_route": "/v1/models"}}))
    assert out["object"] == "error" and out["code"] == 503


def test_engine_loop_start_failure_stops_and_raises():
    core = LoopCore(fail_start=True)
    engines = EngineLoop(core)
    with pytest.raises(RuntimeError, match="model failed to load"):
        engines.start()
    assert [name for name, _ in core.events] == ["start", "stop"]
    assert not engines._thread.is_alive()


class SlowStartLoopCore(LoopCore):
    async def start(self) -> None:
        self.events.append(("start", threading.current_thread().name))
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.events.append(("start cancelled", threading.current_thread().name))
            raise


def test_engine_loop_interrupted_start_is_cancelled_then_stopped():
    class Interrupted(BaseException):
        pass

    def interrupt(_signum, _frame):
        raise Interrupted

    core = SlowStartLoopCore()
    engines = EngineLoop(core)
    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        with pytest.raises(Interrupted):
            engines.start()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert [name for name, _ in core.events] == ["start", "start cancelled", "stop"]
    assert not engines._thread.is_alive()
