"""Load against the real service on loopback: a bounded slice, and SIGTERM under load."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from bench.loadtest import run_load, watch_readiness
from tests.conftest import EMBED_ID
from tests.servers import ServiceProcess


async def test_bounded_load_loses_nothing(server):
    body = {"model": EMBED_ID, "input": "a short sentence"}
    result = await run_load(f"{server.url}/v1/embeddings", body, total=600, concurrency=64)
    assert result.sent == 600
    assert result.lost == 0 and result.server_errors == 0
    assert result.ok == 600


@pytest.fixture
def own_server(model_env):
    with ServiceProcess({**model_env, "SHUTDOWN_DRAIN_SECONDS": "2"}) as proc:
        yield proc


async def test_sigterm_during_load_answers_every_request(own_server):
    """SIGTERM mid-load: /readyz turns 503 while the worker drains, the client (like a load
    balancer) stops sending, and every request sent gets its answer before the exit."""
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_readiness(own_server.url, stop))
    body = {"model": EMBED_ID, "input": ["a short sentence"] * 8}
    load = asyncio.create_task(
        run_load(f"{own_server.url}/v1/embeddings", body, total=100_000, concurrency=32, stop=stop)
    )
    await asyncio.sleep(2.0)
    os.kill(own_server.proc.pid, signal.SIGTERM)
    result = await asyncio.wait_for(load, 120)
    watcher.cancel()
    exit_code = await asyncio.to_thread(own_server.proc.wait, 60)
    summary = result.summary()
    assert result.ok > 0 and stop.is_set(), summary
    assert result.sent < 100_000, summary  # the load was cut by the shutdown, not finished
    assert result.answered == result.sent == result.ok, (summary, own_server.logs())
    assert exit_code == 0
    assert "Completed async cleanup hook: stop" in own_server.logs()
