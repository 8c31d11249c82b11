"""End to end: causal-LM rerankers through the real service (HTTP) and the RunPod worker,
against sentence-transformers 6's CrossEncoder.predict itself (its LogitScore, then its
sigmoid), one family each: Qwen3-Reranker's original checkpoints (yes against no, no chat
template), mxbai-rerank-v2 (1 against 0, mixedbread's prompt as chat template) and
bge-reranker-v2-gemma (the raw Yes logit, FlagEmbedding's prompt as chat template)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from handlers.engine.windows import WINDOW_OVERLAP
from tests.conftest import RERANK_ID
from tests.families_llm_rerankers import (
    BGE_GEMMA_PROMPT,
    MXBAI_PREFIX,
    MXBAI_SUFFIX,
    MXBAI_TASK,
    build_bge_gemma_reranker,
    build_llm_reranker,
    build_mxbai_reranker,
)
from tests.oracles import TOLERANCE
from tests.runpod_procs import LocalApi, worker_env

BUILDERS = {
    "tiny/llm-reranker": build_llm_reranker,
    "tiny/mxbai-rerank-v2": build_mxbai_reranker,
    "tiny/bge-reranker-v2-gemma": build_bge_gemma_reranker,
}
QUERY = "what is the capital of france"
DOCS = ["paris is the capital of france", "a dog", "the weather today is cold and rain"]
INSTRUCTION = "Judge whether the document answers the query"

by_family = pytest.mark.parametrize("llm_id", list(BUILDERS))


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_models) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("llm-reranker")
    built = {served: build(root / served.split("/")[1]) for served, build in BUILDERS.items()}
    return {**built, RERANK_ID: tiny_models[RERANK_ID]}


@pytest.fixture(scope="module")
def worker(models_env) -> Iterator[LocalApi]:
    """One RunPod worker (the SDK's local API) serving the module's models."""
    with LocalApi(worker_env(models_env)) as api:
        yield api


@cache
def cross_encoder(folder: Path) -> Any:
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(folder), device="cpu")


def predict(folder: Path, docs: list[str], **options) -> list[float]:
    """The oracle: CrossEncoder.predict on (QUERY, doc) pairs."""
    scores = cross_encoder(folder).predict([(QUERY, d) for d in docs], **options)
    return np.asarray(scores).tolist()


def scores_by_index(reply: dict) -> list[float]:
    found = {r["index"]: r["relevance_score"] for r in reply["results"]}
    return [found[i] for i in range(len(found))]


def mxbai_prompt(query: str, document: str, instruction: str | None) -> str:
    """mxbai_rerank.MxbaiRerankV2.prepare_inputs' pieces, joined as text."""
    query_part = f"query: {query}"
    if instruction:
        query_part = f"instruction: {instruction}\n{query_part}"
    return f"{MXBAI_PREFIX}{query_part}\ndocument: {document}\n{MXBAI_TASK}{MXBAI_SUFFIX}"


def flag_llm_prompt(query: str, passage: str, prompt: str | None) -> str:
    """FlagEmbedding's FlagLLMReranker.compute_score pieces, joined as text."""
    return f"<bos>A: {query}\nB: {passage}\n{prompt or BGE_GEMMA_PROMPT}"


LIBRARY_PROMPTS = {
    "tiny/mxbai-rerank-v2": mxbai_prompt,
    "tiny/bge-reranker-v2-gemma": flag_llm_prompt,
}


@pytest.mark.parametrize("llm_id", list(LIBRARY_PROMPTS))
@pytest.mark.parametrize("instruction", [None, INSTRUCTION])
def test_a_pair_is_rendered_as_its_library_prompts_it(models, llm_id, instruction):
    model = cross_encoder(models[llm_id])
    features = model.preprocess([(QUERY, DOCS[0])], prompt=instruction)
    rendered = model[0].tokenizer.decode(features["input_ids"][0])
    assert rendered == LIBRARY_PROMPTS[llm_id](QUERY, DOCS[0], instruction)


@by_family
def test_scores_equal_the_cross_encoder_alone_and_batched(models_http, models, llm_id):
    body = {"model": llm_id, "query": QUERY, "documents": DOCS}
    reply = models_http.post("/v1/rerank", json=body)
    assert reply.status_code == 200, reply.text
    want = [predict(models[llm_id], [d])[0] for d in DOCS]  # one pair at a time
    assert scores_by_index(reply.json()) == pytest.approx(want, abs=TOLERANCE)
    order = sorted(range(len(DOCS)), key=lambda i: -want[i])
    assert [r["index"] for r in reply.json()["results"]] == order
    assert len({round(w, 4) for w in want}) == len(DOCS), "oracle too flat"


@by_family
def test_raw_scores_are_the_logit_score(models_http, models, llm_id):
    import torch

    body = {"model": llm_id, "query": QUERY, "documents": DOCS, "raw_scores": True}
    reply = models_http.post("/v1/rerank", json=body).json()
    want = predict(models[llm_id], DOCS, activation_fn=torch.nn.Identity())
    assert scores_by_index(reply) == pytest.approx(want, abs=TOLERANCE)


@by_family
def test_an_instruction_is_the_models_prompt(models_http, models, llm_id):
    body = {"model": llm_id, "query": QUERY, "documents": DOCS, "instruction": INSTRUCTION}
    reply = models_http.post("/v1/rerank", json=body).json()
    want = predict(models[llm_id], DOCS, prompt=INSTRUCTION)
    assert scores_by_index(reply) == pytest.approx(want, abs=TOLERANCE)
    assert want != pytest.approx(predict(models[llm_id], DOCS), abs=TOLERANCE)


@by_family
def test_score_equals_rerank(models_http, models, llm_id):
    body = {"model": llm_id, "text_1": QUERY, "text_2": DOCS}
    scores = [d["score"] for d in models_http.post("/v1/score", json=body).json()["data"]]
    assert scores == pytest.approx(predict(models[llm_id], DOCS), abs=TOLERANCE)


def test_an_instruction_to_a_cross_encoder_is_refused(models_http):
    body = {"model": RERANK_ID, "query": "q", "documents": ["d"], "instruction": "x"}
    reply = models_http.post("/v1/rerank", json=body)
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "instruction"


def test_models_card_names_the_instruction(models_http):
    cards = {m["id"]: m for m in models_http.get("/v1/models").json()["data"]}
    for llm_id in BUILDERS:
        assert cards[llm_id]["capabilities"] == ["rerank", "rerank_instruction"]
    assert cards[RERANK_ID]["capabilities"] == ["rerank"]


@by_family
def test_runpod_native_rerank_job(worker, models, llm_id):
    output = worker.runsync({"model": llm_id, "query": QUERY, "docs": DOCS})
    assert scores_by_index(output) == pytest.approx(predict(models[llm_id], DOCS), abs=TOLERANCE)


def documented_windows(model: Any, words: list[str], instruction: str | None) -> list[str]:
    """docs/models.md's windows, from the library itself: `room` = the model's length less
    the tokens of the pair of the query and an empty document as the model renders it; of a
    text of one-token words, windows of `room` words, each starting WINDOW_OVERLAP before the
    last one ends."""
    pair = model.preprocess([(QUERY, "")], prompt=instruction)["attention_mask"].sum()
    room = model.max_seq_length - int(pair)
    out, start = [], 0
    while start + room < len(words):
        out.append(" ".join(words[start : start + room]))
        start += room - WINDOW_OVERLAP
    return [*out, " ".join(words[start:])]


@pytest.mark.parametrize("instruction", [None, INSTRUCTION])
@pytest.mark.parametrize("llm_id", ["tiny/llm-reranker", "tiny/mxbai-rerank-v2"])
def test_a_long_document_scores_as_its_best_window(models_http, models, llm_id, instruction):
    import torch

    model = cross_encoder(models[llm_id])
    # words each one token of the tiny vocabularies, with or without a space before
    words = ("a lazy embedding on an " * 120 + "embedding embedding on a").split()
    long_doc = " ".join(words)
    assert len(model[0].tokenizer(long_doc, add_special_tokens=False)["input_ids"]) == len(words)
    parts = documented_windows(model, words, instruction)
    assert len(parts) >= 2
    pairs = [(QUERY, part) for part in [DOCS[1], *parts]]
    raw = model.predict(pairs, prompt=instruction, activation_fn=torch.nn.Identity()).tolist()
    assert len({round(score, 4) for score in raw[1:]}) > 1, "windows too flat"
    docs = [DOCS[1], long_doc]
    body = {"model": llm_id, "query": QUERY, "documents": docs, "instruction": instruction}
    body["raw_scores"] = True
    reply = models_http.post("/v1/rerank", json=body).json()
    assert scores_by_index(reply) == pytest.approx([raw[0], max(raw[1:])], abs=TOLERANCE)
    rendered = [
        model.preprocess([pair], prompt=instruction)["attention_mask"].sum() for pair in pairs
    ]
    assert reply["usage"]["total_tokens"] == sum(int(n) for n in rendered)
    capped = models_http.post("/v1/rerank", json={**body, "max_chunks_per_doc": 1}).json()
    assert scores_by_index(capped)[1] == pytest.approx(raw[1], abs=TOLERANCE)
