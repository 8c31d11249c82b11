"""Through the real server: a client that hangs up never has its inputs computed."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.conftest import EMBED_ID
from tests.servers import ServiceProcess


@pytest.fixture(scope="module")
def one_by_one(model_env):
    """The embedder with batches of one item: a big request keeps it busy for a while."""
    with ServiceProcess({**model_env, "BATCH_SIZES": "1;32;32"}) as proc:
        yield proc


def embedder_stats(url: str) -> dict:
    models = httpx.get(f"{url}/v1/models", timeout=30).json()["data"]
    return next(m["stats"] for m in models if m["id"] == EMBED_ID)


def wait_until(condition, seconds: float = 60.0) -> None:
    """Wait for a state the server reaches on its own (not a timing check)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_a_request_whose_client_hung_up_is_dropped_before_inference(one_by_one):
    url = f"{one_by_one.url}/v1/embeddings"
    before = embedder_stats(one_by_one.url)
    long_text = "the quick brown fox jumps over the lazy dog " * 12  # truncated at 128 tokens
    big = {"model": EMBED_ID, "input": [f"{i} {long_text}" for i in range(2000)]}
    replies: list[httpx.Response] = []
    busy = threading.Thread(target=lambda: replies.append(httpx.post(url, json=big, timeout=300)))
    busy.start()
    wait_until(lambda: embedder_stats(one_by_one.url)["admitted_items"] >= 2000)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url, json={"model": EMBED_ID, "input": ["gone"] * 7}, timeout=0.5)
    busy.join()
    assert replies[0].status_code == 200 and len(replies[0].json()["data"]) == 2000
    wait_until(lambda: embedder_stats(one_by_one.url)["queued_items"] == 0)
    after = embedder_stats(one_by_one.url)
    assert after["items"] - before["items"] == 2000  # only the big request was computed
    assert after["dropped"] - before["dropped"] == 7
    assert after["admitted_items"] == 0 and after["waiting_items"] == 0
