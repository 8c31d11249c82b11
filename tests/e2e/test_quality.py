"""Quality on the bundled all-MiniLM-L6-v2 through the real Infinity engine (in-process)."""

from __future__ import annotations

import numpy as np

from handlers.core.dispatch import Core
from handlers.engine.backend import EngineBackend
from handlers.model_specs import BUNDLED_MODEL_ID
from tests.fake_media import FakeMedia


async def test_paraphrases_are_closer_than_unrelated_sentences(make_settings):
    core = Core(settings := make_settings(), EngineBackend(settings), FakeMedia())
    await core.start()
    try:
        body = await core.dispatch(
            "/v1/embeddings",
            {
                "model": BUNDLED_MODEL_ID,
                "input": [
                    "A man is playing a guitar.",
                    "Someone plays a guitar.",
                    "The stock market fell sharply today.",
                ],
            },
        )
    finally:
        await core.stop()
    a, b, c = (np.array(d["embedding"]) for d in body["data"])
    assert len(a) == 384
    assert a @ b > 0.6
    assert a @ b > a @ c + 0.3
