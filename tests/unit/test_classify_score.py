"""/v1/classify, /classify and /v1/score through the core over the fake backend: the
activation, reply shapes, pair semantics and every refusal (the real models' values are
tests/e2e/test_classify_score.py's)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from handlers.core.ops.classify import probabilities
from handlers.errors import ErrorKind, ServiceError
from handlers.model_info import Classes
from tests.fakes import fake_vector


def softmax(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def fake_logits(item: object, labels: int) -> list[float]:
    return [float(v) for v in 3 * fake_vector(repr(item), labels)]


async def test_vllm_reply_gives_each_input_its_label_and_probabilities(core, backend):
    reply = await core.dispatch("/v1/classify", {"model": "nli", "input": ["a", ["p", "h"]]})
    assert backend.calls[-1] == ("classify", ["a", ("p", "h")])
    labels = ("contradiction", "entailment", "neutral")
    assert [d["index"] for d in reply["data"]] == [0, 1]
    for item, data in zip(["a", ("p", "h")], reply["data"], strict=True):
        expected = softmax(fake_logits(item, 3))
        assert data["probs"] == pytest.approx(expected, abs=1e-9)
        assert data["label"] == labels[int(np.argmax(expected))]
        assert data["num_classes"] == 3 and data["object"] == "classification"
    assert reply["usage"] == {"prompt_tokens": 8, "total_tokens": 8}
    assert reply["object"] == "list" and reply["model"] == "nli"


async def test_infinity_reply_lists_labels_highest_first(core):
    reply = await core.dispatch("/classify", {"model": "sentiment", "input": "so good"})
    expected = softmax(fake_logits("so good", 2))
    ranked = sorted(zip(("negative", "positive"), expected, strict=True), key=lambda p: -p[1])
    assert [(e["label"], e["score"]) for e in reply["data"][0]] == [
        (label, pytest.approx(score, abs=1e-9)) for label, score in ranked
    ]
    assert reply["object"] == "classify"


async def test_raw_scores_are_the_logits(core):
    reply = await core.dispatch(
        "/v1/classify", {"model": "sentiment", "input": ["x"], "raw_scores": True}
    )
    assert reply["data"][0]["probs"] == pytest.approx(fake_logits("x", 2), abs=1e-6)


def test_multi_label_models_get_a_sigmoid_each():
    logits = np.array([2.0, -1.0, 0.0])
    scores = probabilities(logits, Classes(("a", "b", "c"), multi_label=True), raw=False)
    assert scores == pytest.approx([1 / (1 + math.exp(-v)) for v in logits.tolist()])
    assert probabilities(logits, Classes(("a", "b", "c")), raw=False) == pytest.approx(
        softmax(logits.tolist())
    )


@pytest.mark.parametrize(
    ("body", "kind", "fragment"),
    [
        (
            {"model": "sentiment", "input": ["fine", ["a", "b"]]},
            ErrorKind.INVALID,
            "input[1] is a pair; model 'sentiment' classifies single texts",
        ),
        ({"model": "nli", "input": [["a", "b", "c"]]}, ErrorKind.INVALID, "input[0]"),
        ({"model": "nli", "input": []}, ErrorKind.INVALID, "input"),
        ({"model": "nli", "input": [3]}, ErrorKind.INVALID, "input[0]"),
        ({"model": "embedder", "input": ["a"]}, ErrorKind.INVALID, "'classify' capability"),
        ({"model": "nope", "input": ["a"]}, ErrorKind.NOT_FOUND, "is not deployed"),
        ({"input": ["a"]}, ErrorKind.INVALID, "2 classifiers: sentiment, nli"),
        ({"model": "nli", "input": ["a"] * 99}, ErrorKind.TOO_LARGE, "MAX_CLIENT_BATCH_SIZE"),
    ],
)
async def test_bad_classify_requests_are_refused_by_place(
    make_settings, backend, body, kind, fragment
):
    from handlers.core.dispatch import Core
    from tests.fake_media import FakeMedia

    core = Core(make_settings(max_client_batch_size=8), backend, FakeMedia())
    with pytest.raises(ServiceError) as caught:
        await core.dispatch("/v1/classify", body)
    assert caught.value.kind is kind and fragment in caught.value.message
    assert not [c for c in backend.calls if c[0] == "classify"]


async def test_score_by_a_reranker_is_its_rerank_score(core):
    body = {"model": "reranker", "text_1": "red car", "text_2": ["a red car", "blue sky", "car"]}
    reply = await core.dispatch("/v1/score", body)
    # the fake reranker's logit: the share of the query's words in the document
    logits = [1.0, 0.0, 0.5]
    assert [d["score"] for d in reply["data"]] == pytest.approx(
        [1 / (1 + math.exp(-v)) for v in logits]
    )
    rerank = await core.dispatch(
        "/v1/rerank", {"model": "reranker", "query": "red car", "documents": body["text_2"]}
    )
    by_index = {r["index"]: r["relevance_score"] for r in rerank["results"]}
    assert [d["score"] for d in reply["data"]] == pytest.approx([by_index[i] for i in range(3)])
    assert [d["index"] for d in reply["data"]] == [0, 1, 2]


async def test_score_zips_lists_of_equal_length(core):
    body = {"model": "reranker", "text_1": ["red car", "blue sky"], "text_2": ["car", "car"]}
    reply = await core.dispatch("/v1/score", body)
    assert [d["score"] for d in reply["data"]] == pytest.approx([1 / (1 + math.exp(-0.5)), 0.5])


async def test_score_by_an_embedder_is_the_cosine_of_its_vectors(core):
    body = {"model": "embedder", "text_1": "a cat", "text_2": ["a dog", "a cat"]}
    reply = await core.dispatch("/v1/score", body)
    first = fake_vector("a cat")
    expected = [float(first @ fake_vector(t)) for t in body["text_2"]]
    assert [d["score"] for d in reply["data"]] == pytest.approx(expected, abs=1e-6)
    assert reply["data"][1]["score"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"model": "reranker", "text_1": ["a", "b"], "text_2": ["c", "d", "e"]}, "text_1 has 2"),
        ({"model": "sentiment", "text_1": "a", "text_2": "b"}, "cannot score pairs"),
        ({"model": "reranker", "text_1": "a", "text_2": []}, "text_2"),
        ({"model": "reranker", "text_2": ["a"]}, "text_1"),
    ],
)
async def test_bad_score_requests_are_refused(core, body, fragment):
    with pytest.raises(ServiceError) as caught:
        await core.dispatch("/v1/score", body)
    assert caught.value.kind is ErrorKind.INVALID and fragment in caught.value.message
