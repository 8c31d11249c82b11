"""A bounded load slice against the real service on loopback: nothing lost, no 5xx."""

from __future__ import annotations

from bench.loadtest import run_load
from tests.conftest import EMBED_ID


async def test_bounded_load_loses_nothing(server):
    body = {"model": EMBED_ID, "input": "a short sentence"}
    result = await run_load(f"{server.url}/v1/embeddings", body, total=600, concurrency=64)
    assert result.sent == 600
    assert result.lost == 0 and result.server_errors == 0
    assert result.ok == 600
