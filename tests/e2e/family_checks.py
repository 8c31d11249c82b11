"""Checks of one served family against its oracle: embedders, adapters, image-text, rerankers."""

from __future__ import annotations

import asyncio
import base64
import io
import random
from pathlib import Path

import numpy as np
import pytest

from handlers.core.dispatch import Core
from handlers.errors import ServiceError
from tests import families_shared, oracles
from tests.families import FAMILIES
from tests.tiny_models import WORDS

COSINE = 0.9999
RNG = random.Random(7)
# Many lengths: one word, a sentence, surrounding whitespace, 18 and 36 words (past CLIP's
# wrong 20-token limit), and one past every context length.
TEXTS = [
    "hello",
    "the quick brown fox jumps over the lazy dog",
    "  a red dress with   spaces \n",
    " ".join(RNG.choices(WORDS, k=18)),
    " ".join(RNG.choices(WORDS, k=36)),
    " ".join(RNG.choices(WORDS, k=300)),
]
QUERY = "which city is the capital of france"
DOCS = [
    "paris is the capital of france",
    "berlin is the capital of germany",
    "the weather today is cold",
    " ".join(RNG.choices(WORDS, k=30)),
    "a cat",
]


def served_id(name: str) -> str:
    return f"tiny/{name}"


def data_uris() -> tuple[list[str], list]:
    from PIL import Image

    pictures = [
        Image.new("RGB", (40, 40), (200, 30, 30)),
        Image.linear_gradient("L").resize((64, 48)).convert("RGB"),
        Image.new("RGB", (90, 30), (20, 160, 90)),
    ]
    uris = []
    for picture in pictures:
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        uris.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    return uris, pictures


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


async def embed(core: Core, name: str, inputs: list[str], **options) -> tuple[np.ndarray, dict]:
    body = {"model": served_id(name), "input": inputs, **options}
    reply = await core.dispatch("/v1/embeddings", body)
    return np.array([item["embedding"] for item in reply["data"]]), reply


async def check_embedder(core: Core, name: str, folder: Path) -> None:
    vectors, reply = await embed(core, name, TEXTS)
    similarity = cosines(vectors, oracles.embed_oracle(folder, TEXTS))
    print(f"{name}: cosine to the oracle, min {similarity.min():.7f}")
    assert similarity.min() >= COSINE, similarity
    assert reply["usage"]["total_tokens"] == oracles.token_count(folder, TEXTS)
    for index, text in enumerate(TEXTS):  # alone, the same as beside longer and shorter ones
        alone, _ = await embed(core, name, [text])
        assert cosines(alone, vectors[index : index + 1])[0] >= 0.99999, (index, text)
    for kind, prompt in FAMILIES[name].prompts.items():
        if kind in ("query", "document") and prompt:
            prompted, _ = await embed(core, name, TEXTS[:3], input_type=kind)
            oracle = oracles.embed_oracle(folder, TEXTS[:3], prompt=prompt)
            assert cosines(prompted, oracle).min() >= COSINE, kind
    await check_truncate_false(core, name)


async def check_adapters(core: Core, name: str, folder: Path) -> None:
    """A task (Jina's field) or prompt_name applies the model's prompt and LoRA adapter of
    that name (`retrieval.query`: the `retrieval_query` adapter), alone or in a batch; none
    applies the base weights (check_embedder); a name it has neither of is a 400 naming
    both."""
    prompts = FAMILIES[name].prompts
    for param, task in (("task", "retrieval.query"), ("prompt_name", "text-matching")):
        adapter = task.replace(".", "_").replace("-", "_")
        vectors, _ = await embed(core, name, TEXTS, **{param: task})
        oracle = oracles.embed_oracle(folder, TEXTS, prompt=prompts[task], adapter=adapter)
        similarity = cosines(vectors, oracle)
        print(f"{name} {task}: cosine to the oracle, min {similarity.min():.7f}")
        assert similarity.min() >= COSINE, (task, similarity)
        base = oracles.embed_oracle(folder, TEXTS, prompt=prompts[task])
        assert cosines(oracle, base).max() < 0.99, "the adapter changes every vector"
        alone, _ = await embed(core, name, TEXTS[:1], **{param: task})
        assert cosines(alone, vectors[:1])[0] >= 0.99999, task
    # at once: each request's adapter applies to its own inputs only
    tasks = ["retrieval.query", "retrieval.passage", None, "retrieval.query"]
    replies = await asyncio.gather(*(embed(core, name, TEXTS, task=task) for task in tasks))
    for task, (vectors, _) in zip(tasks, replies, strict=True):
        adapter = task and task.replace(".", "_")
        oracle = oracles.embed_oracle(folder, TEXTS, prompts.get(task or "", ""), adapter)
        assert cosines(vectors, oracle).min() >= COSINE, task
    with pytest.raises(ServiceError) as refused:
        await embed(core, name, TEXTS[:1], task="summarization")
    assert refused.value.code == "unknown_prompt"
    assert "retrieval_query" in refused.value.message


async def check_image_text(core: Core, name: str, folder: Path) -> None:
    vectors, reply = await embed(core, name, TEXTS, modality="text")
    similarity = cosines(vectors, oracles.image_text_oracle(folder, texts=TEXTS))
    print(f"{name}: text cosine to the oracle, min {similarity.min():.7f}")
    assert similarity.min() >= COSINE, similarity
    assert reply["usage"]["total_tokens"] == oracles.token_count(folder, TEXTS)
    for index, text in enumerate(TEXTS):
        alone, _ = await embed(core, name, [text], modality="text")
        assert cosines(alone, vectors[index : index + 1])[0] >= 0.99999, (index, text)
    uris, pictures = data_uris()
    images, _ = await embed(core, name, uris, modality="image")
    similarity = cosines(images, oracles.image_text_oracle(folder, images=pictures))
    print(f"{name}: image cosine to the oracle, min {similarity.min():.7f}")
    assert similarity.min() >= COSINE, similarity
    await check_truncate_false(core, name, modality="text")


async def check_truncate_false(core: Core, name: str, **options) -> None:
    """truncate=false counts with the model's tokenizer: what fits passes, the rest is 413."""
    await embed(core, name, TEXTS[:2], truncate=False, **options)
    with pytest.raises(ServiceError) as refused:
        await embed(core, name, [TEXTS[1], TEXTS[-1]], truncate=False, **options)
    assert refused.value.code == "input_too_long"
    assert refused.value.message.startswith("input[1] has ")


async def check_reranker(core: Core, name: str, folder: Path) -> None:
    query, docs = QUERY, DOCS
    if name == "qwen3-reranker":  # as its model card formats the pair
        query = families_shared.qwen3_reranker_query(
            "Given a web search query, retrieve passages", QUERY
        )
        docs = [families_shared.qwen3_reranker_document(doc) for doc in DOCS]
    body = {"model": served_id(name), "query": query, "documents": docs, "raw_scores": True}
    reply = await core.dispatch("/v1/rerank", body)
    scores = [r["relevance_score"] for r in sorted(reply["results"], key=lambda r: r["index"])]
    expected = oracles.rerank_scores(folder, query, docs, raw_scores=True)
    print(f"{name}: largest logit difference {np.abs(np.subtract(scores, expected)).max():.2e}")
    assert np.allclose(scores, expected, atol=1e-4, rtol=1e-4), (scores, expected)
    assert reply["usage"]["total_tokens"] == oracles.token_count(folder, docs, query=query)
