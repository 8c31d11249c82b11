"""Embeddings options on the real engines in-process (tiny BERT, torch and ONNX): prompts,
truncation side and refusal, normalize false, identity and fingerprints."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import numpy as np
import pytest

from handlers.core.dispatch import Core
from handlers.engine.backend import EngineBackend
from handlers.errors import ErrorKind, ServiceError
from tests.conftest import EMBED_ID
from tests.fake_media import FakeMedia
from tests.tiny_models import WORDS

LONG = random.Random(3).choices(WORDS, k=200)  # one token per word; 126 fit beside [CLS] [SEP]


@contextlib.asynccontextmanager
async def serving(make_settings, tiny_models, tmp_path, **env: str) -> AsyncIterator[Core]:
    settings = make_settings(
        model_names=str(tiny_models[EMBED_ID]),
        served_model_names=EMBED_ID,
        hf_home=str(tmp_path),
        **env,
    )
    core = Core(settings, EngineBackend(settings), FakeMedia())
    await core.start()
    try:
        yield core
    finally:
        await core.stop()


async def embed(core: Core, texts: list[str], **options) -> tuple[np.ndarray, dict]:
    body = await core.dispatch("/v1/embeddings", {"model": EMBED_ID, "input": texts, **options})
    return np.array([item["embedding"] for item in body["data"]]), body


def mean_pooled(folder, texts: list[str]) -> np.ndarray:
    """The oracle for normalize false: transformers' BERT, mean over the attention mask."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder)
    features = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**features).last_hidden_state
    mask = features["attention_mask"][..., None].float()
    return ((hidden * mask).sum(1) / mask.sum(1)).numpy()


@pytest.mark.parametrize("backend", ["torch", "optimum"])
async def test_options_on_the_real_engine(make_settings, tiny_models, tmp_path, backend):
    async with serving(make_settings, tiny_models, tmp_path, backend=backend) as core:
        # prompts: the embedding with a prompt is the embedding of the prefixed text
        plain, plain_body = await embed(core, ["query : the cat", "document : the cat"])
        query, query_body = await embed(core, ["the cat"], prompt_name="query")
        document, _ = await embed(core, ["the cat"], input_type="search_document")
        assert np.allclose(query[0], plain[0], atol=1e-6)
        assert np.allclose(document[0], plain[1], atol=1e-6)
        assert query_body["usage"]["total_tokens"] * 2 == plain_body["usage"]["total_tokens"]
        as_is, _ = await embed(core, ["the cat"], input_type="clustering")  # no such prompt
        assert np.allclose(as_is, (await embed(core, ["the cat"]))[0], atol=1e-6)

        # truncation: the side that is cut, batches of both sides at once
        text = " ".join(LONG)
        right, left, head, tail = [
            vectors
            for vectors, _ in await asyncio.gather(
                embed(core, [text]),
                embed(core, [text], truncation_direction="left"),
                embed(core, [" ".join(LONG[:126])]),
                embed(core, [" ".join(LONG[-126:])]),
            )
        ]
        assert np.allclose(right, head, atol=1e-6) and np.allclose(left, tail, atol=1e-6)
        assert not np.allclose(right, left, atol=1e-3)

        # truncate false: counted untruncated, special tokens included; nothing is cut
        with pytest.raises(ServiceError) as refused:
            await embed(core, ["a cat", text], truncate=False)
        assert refused.value.kind is ErrorKind.TOO_LARGE
        assert refused.value.message == (
            "input[1] has 202 tokens; the model's context length is 128 tokens and truncate "
            "is false."
        )
        fits, _ = await embed(core, [" ".join(LONG[:126])], truncate=False)
        assert np.allclose(fits, head, atol=1e-6)

        # normalize false: the pooling output before the Normalize module
        raw, _ = await embed(core, ["the cat", "a red dress"], normalize=False)
        oracle = mean_pooled(tiny_models[EMBED_ID], ["the cat", "a red dress"])
        assert np.allclose(raw, oracle, atol=1e-5)
        unit, _ = await embed(core, ["the cat", "a red dress"])
        assert np.allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), unit, atol=1e-6)
        cut, _ = await embed(core, ["the cat"], normalize=False, dimensions=8)
        assert np.allclose(cut[0], raw[0, :8], atol=1e-6)


async def test_fingerprints_follow_the_vector_space(make_settings, tiny_models, tmp_path):
    cards = {}
    for name, env in {
        "torch": {},
        "torch again": {},
        "onnx fp32": {"backend": "optimum"},
        "onnx int8": {"backend": "optimum", "dtypes": "int8"},
        "default prompt": {"default_prompt_names": "query"},
    }.items():
        async with serving(make_settings, tiny_models, tmp_path, **env) as core:
            cards[name] = (await core.dispatch("/v1/models"))["data"][0]
            if name == "default prompt":
                default, body = await embed(core, ["the cat"])
                prefixed, _ = await embed(core, ["query : the cat"], input_type="classification")
                assert np.allclose(default, prefixed, atol=1e-6)
                assert body["fingerprint"] == cards[name]["fingerprint"]
    prints = {name: card["fingerprint"] for name, card in cards.items()}
    assert prints["torch"] == prints["torch again"] == prints["onnx fp32"]
    assert len({prints["torch"], prints["onnx int8"], prints["default prompt"]}) == 3
    assert all(len(value) == 16 for value in prints.values())
    assert len({card["revision"] for card in cards.values()}) == 1
    assert cards["torch"]["revision"].startswith("sha256:")
    assert len(list(tmp_path.glob("embedding-revisions/*.txt"))) == 1  # hashed once, kept
    assert cards["onnx int8"]["dtype"] == "int8" and cards["torch"]["dtype"] == "float32"
    assert cards["default prompt"]["default_prompt_name"] == "query"
    assert {card["max_input_tokens"] for card in cards.values()} == {128}


async def test_an_unknown_default_prompt_stops_start_up(make_settings, tiny_models, tmp_path):
    with pytest.raises(ValueError, match="DEFAULT_PROMPT_NAMES: model tiny/bert-embedder has no"):
        async with serving(make_settings, tiny_models, tmp_path, default_prompt_names="passage"):
            pass
