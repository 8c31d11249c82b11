"""End to end: a causal-LM reranker (as Qwen3-Reranker's original checkpoints) through the
real service (HTTP) and the RunPod worker, against sentence-transformers 6's
CrossEncoder.predict itself (LogitScore: yes against no, then its sigmoid)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import RERANK_ID
from tests.families_llm_rerankers import build_llm_reranker
from tests.oracles import TOLERANCE
from tests.runpod_procs import LocalApi, worker_env

LLM_ID = "tiny/llm-reranker"
QUERY = "what is the capital of france"
DOCS = ["paris is the capital of france", "a dog", "the weather today is cold and rain"]


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_models) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("llm-reranker")
    return {LLM_ID: build_llm_reranker(root / "llm"), RERANK_ID: tiny_models[RERANK_ID]}


def predict(folder: Path, docs: list[str], **options) -> list[float]:
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(folder), device="cpu")
    return np.asarray(model.predict([(QUERY, d) for d in docs], **options)).tolist()


def scores_by_index(reply: dict) -> list[float]:
    found = {r["index"]: r["relevance_score"] for r in reply["results"]}
    return [found[i] for i in range(len(found))]


def test_scores_equal_the_cross_encoder_alone_and_batched(models_http, models):
    body = {"model": LLM_ID, "query": QUERY, "documents": DOCS}
    reply = models_http.post("/v1/rerank", json=body)
    assert reply.status_code == 200, reply.text
    want = [predict(models[LLM_ID], [d])[0] for d in DOCS]  # one pair at a time
    assert scores_by_index(reply.json()) == pytest.approx(want, abs=TOLERANCE)
    order = sorted(range(len(DOCS)), key=lambda i: -want[i])
    assert [r["index"] for r in reply.json()["results"]] == order
    assert len({round(w, 4) for w in want}) == len(DOCS), "oracle too flat"


def test_raw_scores_are_the_logit_score(models_http, models):
    import torch

    body = {"model": LLM_ID, "query": QUERY, "documents": DOCS, "raw_scores": True}
    reply = models_http.post("/v1/rerank", json=body).json()
    want = predict(models[LLM_ID], DOCS, activation_fn=torch.nn.Identity())
    assert scores_by_index(reply) == pytest.approx(want, abs=TOLERANCE)


def test_an_instruction_is_the_models_prompt(models_http, models):
    instruction = "Judge whether the document answers the query"
    body = {"model": LLM_ID, "query": QUERY, "documents": DOCS, "instruction": instruction}
    reply = models_http.post("/v1/rerank", json=body).json()
    want = predict(models[LLM_ID], DOCS, prompt=instruction)
    assert scores_by_index(reply) == pytest.approx(want, abs=TOLERANCE)
    assert want != pytest.approx(predict(models[LLM_ID], DOCS), abs=TOLERANCE)


def test_score_equals_rerank(models_http, models):
    body = {"model": LLM_ID, "text_1": QUERY, "text_2": DOCS}
    scores = [d["score"] for d in models_http.post("/v1/score", json=body).json()["data"]]
    assert scores == pytest.approx(predict(models[LLM_ID], DOCS), abs=TOLERANCE)


def test_an_instruction_to_a_cross_encoder_is_refused(models_http):
    body = {"model": RERANK_ID, "query": "q", "documents": ["d"], "instruction": "x"}
    reply = models_http.post("/v1/rerank", json=body)
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "instruction"


def test_models_card_names_the_instruction(models_http):
    cards = {m["id"]: m for m in models_http.get("/v1/models").json()["data"]}
    assert cards[LLM_ID]["capabilities"] == ["rerank", "rerank_instruction"]
    assert cards[RERANK_ID]["capabilities"] == ["rerank"]


def test_runpod_native_rerank_job(models_env, models):
    with LocalApi(worker_env(models_env)) as worker:
        output = worker.runsync({"model": LLM_ID, "query": QUERY, "docs": DOCS})
    assert scores_by_index(output) == pytest.approx(predict(models[LLM_ID], DOCS), abs=TOLERANCE)
