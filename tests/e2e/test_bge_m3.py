"""End to end: a BGE-M3-like model (XLM-R, FlagEmbedding's sparse and ColBERT heads) through
the real service (HTTP) and the RunPod worker: its dense vector, lexical weights and ColBERT
vectors, several from one request, against the heads computed in plain torch as
FlagEmbedding's M3 reference defines them (one text at a time)."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import EMBED_ID
from tests.families_bge_m3 import build_bge_m3
from tests.runpod_procs import LocalApi, worker_env

M3_ID = "tiny/bge-m3"
TEXTS = [
    "paris is the capital city of france and berlin is the capital of germany",
    "the cat the cat",
    "hello",
]
ALL = ["dense", "sparse", "multi_vector"]


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_models) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bge-m3")
    return {M3_ID: build_bge_m3(root / "m3"), EMBED_ID: tiny_models[EMBED_ID]}


def reference(folder: Path, text: str) -> dict:
    """FlagEmbedding's M3 outputs of one text, in plain torch: CLS normalised; ReLU of
    sparse_linear, the largest weight per token id, positive ones only, cls/eos/pad/unk
    dropped; colbert_linear over every token but the first, normalised."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    heads = {}
    for name in ("sparse_linear", "colbert_linear"):
        state = torch.load(folder / f"{name}.pt", weights_only=True)
        heads[name] = torch.nn.Linear(*reversed(state["weight"].shape))
        heads[name].load_state_dict(state)
    inputs = tokenizer([text], truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**inputs).last_hidden_state
        dense = torch.nn.functional.normalize(hidden[:, 0], dim=-1)[0]
        weights = torch.relu(heads["sparse_linear"](hidden)).squeeze(-1)[0]
        colbert = torch.nn.functional.normalize(heads["colbert_linear"](hidden[:, 1:]), dim=-1)
    unused = {tokenizer.cls_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}
    unused.add(tokenizer.unk_token_id)
    lexical: dict[int, float] = {}
    for weight, token in zip(weights.tolist(), inputs["input_ids"][0].tolist(), strict=True):
        if token not in unused and weight > 0 and weight > lexical.get(token, 0.0):
            lexical[token] = weight
    count = int(inputs["attention_mask"].sum())
    return {
        "dense": dense.numpy(),
        "sparse": {i: lexical[i] for i in sorted(lexical)},
        "multi_vector": colbert[0, : count - 1].numpy(),
        "tokens": tokenizer.convert_ids_to_tokens(sorted(lexical)),
        "count": count,
    }


@pytest.fixture(scope="module")
def wanted(models) -> list[dict]:
    return [reference(models[M3_ID], text) for text in TEXTS]


def cosines(got: list, want: np.ndarray) -> np.ndarray:
    got = np.atleast_2d(np.asarray(got, dtype=np.float64))
    want = np.atleast_2d(want)
    assert got.shape == want.shape
    return (got * want).sum(axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))


def assert_outputs(got: dict, want: dict) -> None:
    if "dense" in got:
        assert cosines(got["dense"], want["dense"]).min() >= 0.9999
    if "sparse" in got:
        assert got["sparse"]["indices"] == list(want["sparse"])
        assert got["sparse"]["values"] == pytest.approx(list(want["sparse"].values()), abs=1e-5)
    if "multi_vector" in got:
        assert cosines(got["multi_vector"], want["multi_vector"]).min() >= 0.9999


def test_all_three_outputs_of_one_request_equal_the_reference_batched(models_http, wanted):
    body = {"model": M3_ID, "input": TEXTS, "outputs": ALL}
    reply = models_http.post("/v1/embeddings", json=body)
    assert reply.status_code == 200, reply.text
    for item, want in zip(reply.json()["data"], wanted, strict=True):
        assert list(item["embeddings"]) == ALL and "embedding" not in item
        assert_outputs(item["embeddings"], want)
    assert reply.json()["usage"]["prompt_tokens"] == sum(w["count"] for w in wanted)
    assert len({len(w["sparse"]) for w in wanted}) > 1, "reference too flat"


def test_each_output_alone_and_the_default(models_http, wanted):
    for output in ALL:
        body = {"model": M3_ID, "input": TEXTS[:2], "outputs": [output]}
        data = models_http.post("/v1/embeddings", json=body).json()["data"]
        for item, want in zip(data, wanted[:2], strict=True):
            assert_outputs({output: item["embedding"]}, want)
    default = models_http.post("/v1/embeddings", json={"model": M3_ID, "input": TEXTS[2]})
    assert cosines(default.json()["data"][0]["embedding"], wanted[2]["dense"]).min() >= 0.9999


def test_sparse_tokens_pruning_and_quantised_token_vectors(models_http, wanted):
    body = {
        "model": M3_ID,
        "input": TEXTS[0],
        "outputs": ["sparse", "multi_vector"],
        "return_tokens": True,
        "sparse_top_k": 3,
        "embedding_type": "int8",
    }
    (item,) = models_http.post("/v1/embeddings", json=body).json()["data"]
    want = wanted[0]
    top = sorted(want["sparse"], key=lambda i: -want["sparse"][i])[:3]
    assert item["embeddings"]["sparse"]["indices"] == sorted(top)
    tokens = dict(zip(want["sparse"], want["tokens"], strict=True))
    assert item["embeddings"]["sparse"]["tokens"] == [tokens[i] for i in sorted(top)]
    quantised = np.asarray(item["embeddings"]["multi_vector"])
    expected = np.clip(np.round(want["multi_vector"] * 127), -127, 127)
    assert np.abs(quantised - expected).max() <= 1


def test_float16_token_vectors_in_base64_are_half_the_bytes(models_http, wanted):
    body = {
        "model": M3_ID,
        "input": TEXTS[0],
        "outputs": ["multi_vector"],
        "embedding_type": "float16",
        "encoding_format": "base64",
    }
    (item,) = models_http.post("/v1/embeddings", json=body).json()["data"]
    want = wanted[0]["multi_vector"]
    raw = np.frombuffer(base64.b64decode(item["embedding"]), "<f2").reshape(want.shape)
    assert cosines(raw.astype(np.float64), want).min() >= 0.9999
    assert np.abs(raw - want).max() < 1e-3


def test_pooled_colbert_vectors_are_the_reference_pooled(models_http, wanted):
    import torch
    from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling

    pooling = HierarchicalTokenPooling(2, num_protected_tokens=0)
    body = {"model": M3_ID, "input": TEXTS, "outputs": ["multi_vector", "dense"], "pool_factor": 2}
    reply = models_http.post("/v1/embeddings", json=body)
    assert reply.status_code == 200, reply.text
    kept = []
    for item, want in zip(reply.json()["data"], wanted, strict=True):
        pooled = pooling.pool_one(torch.from_numpy(want["multi_vector"])).numpy()
        assert cosines(item["embeddings"]["multi_vector"], pooled).min() >= 0.9999
        assert cosines(item["embeddings"]["dense"], want["dense"]).min() >= 0.9999
        kept.append(len(pooled) / len(want["multi_vector"]))
    assert kept[0] <= 0.5, "pooling kept every vector"


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"model": EMBED_ID, "outputs": ["sparse"]}, "outputs", "does not give sparse"),
        ({"model": M3_ID, "outputs": ["colbert"]}, "outputs", "multi_vector"),
        ({"model": M3_ID, "return_tokens": True}, "return_tokens", "add 'sparse' to outputs"),
        ({"model": M3_ID, "outputs": ["sparse"], "dimensions": 8}, "dimensions", "'dense'"),
        ({"model": M3_ID, "outputs": []}, "outputs", ""),
        ({"model": M3_ID, "pool_factor": 2}, "pool_factor", "add 'multi_vector' to outputs"),
    ],
)
def test_bad_output_requests_get_a_clear_400(models_http, body, param, fragment):
    reply = models_http.post("/v1/embeddings", json={"input": "a", **body})
    assert reply.status_code in (400, 422), reply.text
    error = reply.json()["error"]
    assert fragment in error["message"] and param in (error["param"] or error["message"])


def test_models_card_names_its_outputs(models_http):
    cards = {m["id"]: m for m in models_http.get("/v1/models").json()["data"]}
    assert cards[M3_ID]["outputs"] == ALL
    assert cards[M3_ID]["dimensions"] == 32 and cards[M3_ID]["pooling"] == "cls"
    assert cards[EMBED_ID]["outputs"] == ["dense"]


def test_runpod_native_and_openai_route_jobs(models_env, wanted):
    job = {"model": M3_ID, "input": TEXTS[:1], "outputs": ["sparse", "dense"]}
    with LocalApi(worker_env(models_env)) as worker:
        native = worker.runsync(job)
        (routed,) = worker.runsync({"openai_route": "/v1/embeddings", "openai_input": job})
    assert_outputs(native["data"][0]["embeddings"], wanted[0])
    assert routed["data"] == native["data"]
