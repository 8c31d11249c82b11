"""End to end for the RunPod worker: `python -m runpod_adapter` under the real RunPod SDK.

Every process here talks to 127.0.0.1 only and runs with RUNPOD_SKIP_AUTO_SYSTEM_CHECKS=true
(the SDK's start-up checks would otherwise open a connection to a public DNS server).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from runpod_adapter.handler import ACCEPTED_SHAPES
from tests.conftest import CLIP_ID, EMBED_ID, RERANK_ID
from tests.oracles import assert_rerank_matches, usage_tokens
from tests.runpod_procs import LocalApi, assert_error, worker_env


@pytest.fixture(scope="module")
def worker(model_env: dict[str, str]) -> Iterator[LocalApi]:
    with LocalApi(worker_env(model_env)) as api:
        yield api


def png_data_uri(size: int = 32) -> str:
    from PIL import Image

    image = Image.new("RGB", (size, size), (200, 30, 30))
    for x in range(size):
        image.putpixel((x, x), (10, 220, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# ----------------------------------------------------------------------------- success
def test_models_via_openai_route_is_the_body_itself(worker):
    output = worker.runsync({"openai_route": "/v1/models"})
    assert output["object"] == "list"
    caps = {m["id"]: m["capabilities"] for m in output["data"]}
    assert caps == {EMBED_ID: ["embed"], RERANK_ID: ["rerank"], CLIP_ID: ["embed", "image_embed"]}


def test_native_embeddings_return_float_vectors(worker, tiny_models):
    output = worker.runsync({"model": EMBED_ID, "input": ["hello world", "a cat"]})
    assert output["object"] == "list" and output["model"] == EMBED_ID
    assert [d["index"] for d in output["data"]] == [0, 1]
    for item in output["data"]:
        assert len(item["embedding"]) == 32
        assert all(isinstance(x, float) for x in item["embedding"])
        assert np.isclose(np.linalg.norm(item["embedding"]), 1.0, atol=1e-4)
    tokens = usage_tokens(tiny_models[EMBED_ID], ["hello world", "a cat"])
    assert output["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    assert output["id"].startswith("infinity-")
    cards = {card["id"]: card for card in worker.runsync({"openai_route": "/v1/models"})["data"]}
    assert output["fingerprint"] == cards[EMBED_ID]["fingerprint"]


def test_openai_route_embeddings_are_a_one_element_list(worker):
    body = {"model": EMBED_ID, "input": ["hello world", "a cat"]}
    output = worker.runsync({"openai_route": "/v1/embeddings", "openai_input": body})
    assert isinstance(output, list) and len(output) == 1
    native = worker.runsync(body)
    assert output[0]["data"] == native["data"]
    assert all(isinstance(x, float) for x in output[0]["data"][0]["embedding"])


def test_native_rerank_with_docs_alias(worker, tiny_models):
    docs = ["a cat on the house", "the weather today", "a dog"]
    job = {"model": RERANK_ID, "query": "cat", "docs": docs, "return_docs": True}
    output = worker.runsync(job)
    assert output["object"] == "rerank" and output["model"] == RERANK_ID
    assert_rerank_matches(tiny_models[RERANK_ID], job, output["results"], as_sent=True)
    tokens = usage_tokens(tiny_models[RERANK_ID], docs, "cat")
    assert output["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_openai_route_rerank_is_a_one_element_list(worker, tiny_models):
    body = {"model": RERANK_ID, "query": "cat", "documents": ["a cat", "a dog"], "top_n": 1}
    output = worker.runsync({"openai_route": "/v1/rerank", "openai_input": body})
    assert isinstance(output, list) and len(output) == 1
    assert output[0]["object"] == "rerank"
    assert_rerank_matches(tiny_models[RERANK_ID], body, output[0]["results"])


def test_image_embedding_from_data_uri(worker, tiny_models):
    uri = png_data_uri()
    output = worker.runsync({"model": CLIP_ID, "input": [uri], "modality": "image"})
    vector = output["data"][0]["embedding"]
    assert len(vector) == 16 and all(isinstance(x, float) for x in vector)
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-4)
    mixed = worker.runsync({"model": CLIP_ID, "input": ["a red dress", uri], "modality": "auto"})
    assert mixed["data"][1]["embedding"] == vector
    assert output["usage"]["prompt_tokens"] == 0  # images count no tokens
    tokens = usage_tokens(tiny_models[CLIP_ID], ["a red dress"])
    assert mixed["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_run_then_status_completes_a_job(worker):
    reply = worker.client.post("/run", json={"input": {"model": EMBED_ID, "input": "hello"}})
    job = reply.json()
    assert job["status"] == "IN_PROGRESS"
    status = worker.client.post(f"/status/{job['id']}").json()
    assert status["status"] == "COMPLETED"
    assert len(status["output"]["data"][0]["embedding"]) == 32


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("job_input", "code", "message", "fragment"),
    [
        (
            {"model": "x", "input": "hi"},
            404,
            None,
            "'x'",
        ),
        (
            {"model": RERANK_ID, "input": "hi"},
            400,
            f"Model '{RERANK_ID}' does not expose the 'embed' capability. "
            "Detected capabilities: rerank.",
            "",
        ),
        (
            {"model": EMBED_ID, "input": ["data:image/png;base64,AAAA"], "modality": "image"},
            400,
            f"Model '{EMBED_ID}' does not expose the 'image' capability. "
            "Detected capabilities: embed.",
            "",
        ),
        (
            {"model": EMBED_ID, "query": "q", "docs": ["d"]},
            400,
            None,
            "does not expose the 'rerank' capability",
        ),
        (
            {"model": EMBED_ID, "input": "hi", "modality": "video"},
            400,
            "Invalid modality: 'video'. Supported: text, image, audio, auto",
            "",
        ),
        (
            {"model": CLIP_ID, "input": "hi", "modality": "audio"},
            400,
            None,
            "does not expose the 'audio' capability",
        ),
        ({"model": RERANK_ID, "query": "q"}, 400, None, "documents"),
        ({"input": "hi"}, 400, None, "model"),
        ({"model": EMBED_ID, "input": [[1, 2, 3]]}, 400, None, "send the text itself"),
        ({"foo": 1}, 400, None, ACCEPTED_SHAPES),
        ({"openai_route": "/v1/chat/completions"}, 400, None, "Unknown openai_route"),
        ({"openai_route": "/v1/embeddings", "openai_input": "hi"}, 400, None, "openai_input"),
    ],
)
def test_errors_are_job_output_not_failures(worker, job_input, code, message, fragment):
    assert_error(worker.runsync(job_input), code, message, fragment)


def test_openai_route_errors_are_not_wrapped(worker):
    body = {"model": "x", "input": "hi"}
    output = worker.runsync({"openai_route": "/v1/embeddings", "openai_input": body})
    assert_error(output, 404, fragment="'x'")  # as it is, not wrapped


@pytest.mark.parametrize("job_input", [[1, 2], "hello", None])
def test_non_object_input_is_refused_by_the_local_api_itself(worker, job_input):
    # The SDK's local server validates `input` as an object (422) before any handler runs;
    # on RunPod such a job reaches the handler and gets the 400 error output (unit-tested).
    reply = worker.client.post("/runsync", json={"input": job_input})
    assert reply.status_code == 422


# ----------------------------------------------------------------------------- parity
IMAGE = png_data_uri()
# the HTTP route a native job of a route answers as (the RunPod Infinity worker's shapes:
# a rerank job's documents as sent, as Infinity's /rerank); the others: openai_route only
NATIVE_ROUTES = {"/v1/embeddings": "/v1/embeddings", "/v1/rerank": "/rerank"}
PARITY_CASES = [
    ("/v1/models", None),
    ("/v1/embeddings", {"model": EMBED_ID, "input": ["hello world", "a cat"]}),
    ("/v1/embeddings", {"model": EMBED_ID, "input": "hello", "encoding_format": "base64"}),
    ("/v1/embeddings", {"model": EMBED_ID, "input": "hello", "dimensions": 8}),
    ("/v1/embeddings", {"model": CLIP_ID, "input": [IMAGE], "modality": "image"}),
    ("/v1/embeddings", {"model": CLIP_ID, "input": ["a red dress", IMAGE], "modality": "auto"}),
    (
        "/v1/rerank",
        {
            "model": RERANK_ID,
            "query": "cat",
            "documents": ["a cat", "a dog", "the sun"],
            "return_documents": True,
            "top_n": 2,
        },
    ),
    (
        "/v1/embeddings",
        {"model": EMBED_ID, "input": ["a cat", "cat " * 200], "truncation_direction": "left"},
    ),
    ("/v1/embeddings", {"model": EMBED_ID, "input": "a cat", "prompt_name": "query"}),
    ("/v1/embeddings", {"model": EMBED_ID, "input": "a cat", "input_type": "search_document"}),
    ("/v1/embeddings", {"model": EMBED_ID, "input": "a cat", "normalize": False, "dimensions": 8}),
    (
        "/v1/embeddings",
        {
            "model": EMBED_ID,
            "input": "a cat",
            "embedding_type": "binary",
            "encoding_format": "base64",
        },
    ),
    ("/v1/embeddings", {"model": EMBED_ID, "input": ["a", "cat " * 200], "truncate": False}),
    (
        "/v1/embeddings",
        {"model": EMBED_ID, "input": "a", "prompt_name": "q", "input_type": "query"},
    ),
    ("/v1/embeddings", {"model": EMBED_ID, "input": "a", "prompt_name": "passage"}),
    ("/v1/embeddings", {"model": EMBED_ID, "input": "a", "embedding_type": "int4"}),
    (
        "/v1/rerank",
        {
            "query": "capital of france",
            "documents": [{"text": " ".join(["the"] * 150 + ["paris"]), "id": 1}, "a dog"],
            "return_documents": True,
            "raw_scores": True,
            "max_chunks_per_doc": 3,
        },
    ),
    ("/v2/rerank", {"model": RERANK_ID, "query": "cat", "documents": ["a cat", "a dog"]}),
    ("/v1/tokenize", {"model": RERANK_ID, "input": ["a cat", "hello world"]}),
    ("/v1/tokenize", {"model": EMBED_ID, "input": "a cat", "add_special_tokens": False}),
    ("/v1/rerank", {"model": RERANK_ID, "query": " ".join(["cat"] * 130), "documents": ["a"]}),
    ("/v1/rerank", {"model": RERANK_ID, "query": "q", "documents": ["a", {"title": "t"}]}),
    ("/v2/rerank", {"query": "q", "documents": ["a"], "max_tokens_per_doc": 0}),
    ("/v1/tokenize", {"model": "x", "input": "hi"}),
    ("/v1/embeddings", {"model": "x", "input": "hi"}),
    ("/v1/embeddings", {"model": EMBED_ID, "input": [IMAGE], "modality": "image"}),
    ("/v1/embeddings", {"model": EMBED_ID, "input": "hi", "modality": "video"}),
    ("/v1/embeddings", {"model": CLIP_ID, "input": "hi", "modality": "audio"}),
    ("/v1/embeddings", {"model": EMBED_ID, "input": "hi", "dimensions": 999}),
    ("/v1/rerank", {"model": RERANK_ID, "query": "q"}),
    ("/v1/rerank", {"model": "x", "query": "q", "docs": ["d"]}),
    # the routes and fields of other APIs (Cohere, Voyage, Jina, Infinity's root paths)
    ("/v1/embed", {"model": EMBED_ID, "texts": ["a cat"], "input_type": "search_query"}),
    (
        "/v2/embed",
        {"model": EMBED_ID, "texts": ["a cat"], "embedding_types": ["int8", "base64"]},
    ),
    ("/v2/embed", {"model": CLIP_ID, "images": [IMAGE], "input_type": "image"}),
    ("/v2/embed", {"model": EMBED_ID, "texts": ["a"], "max_tokens": 3}),
    ("/embeddings", {"model": EMBED_ID, "input": "a cat", "output_dimension": 8}),
    ("/models", None),
    ("/rerank", {"model": RERANK_ID, "query": "cat", "docs": ["a cat"], "return_docs": True}),
    ("/v1/embeddings", {"model": CLIP_ID, "input": [{"text": "a red dress"}, {"image": IMAGE}]}),
    ("/v1/embeddings", {"model": EMBED_ID, "input": "a", "output_dtype": "uint8"}),
    ("/v1/embeddings", {"model": EMBED_ID, "input": [[1, 2, 3]]}),
    ("/v1/embeddings", {"model": EMBED_ID, "input": "a", "late_chunking": True}),
]


def _strip_volatile(body: dict[str, Any]) -> dict[str, Any]:
    """Drop what differs per reply or per process: `id`, `created`, model cards' `created`
    and their live figures (only batch size and dimensions of `stats` are fixed)."""
    out = {key: value for key, value in body.items() if key not in ("id", "created")}
    if route_of(out) == "/v1/models":
        out["data"] = [
            {
                **{k: v for k, v in card.items() if k != "created"},
                "stats": {k: card["stats"][k] for k in ("batch_size", "dimensions")},
            }
            for card in out["data"]
        ]
    return out


def route_of(body: dict[str, Any]) -> str | None:
    data = body.get("data")
    if body.get("object") == "list" and data and data[0].get("object") == "model":
        return "/v1/models"
    return None


@pytest.mark.parametrize(("route", "body"), PARITY_CASES)
def test_parity_with_http(worker, server, route, body):
    if body is None:
        http = httpx.get(f"{server.url}{route}", timeout=60)
    else:
        http = httpx.post(f"{server.url}{route}", json=body, timeout=60)
    via_openai = worker.runsync({"openai_route": route, "openai_input": body})
    if http.status_code != 200:
        error = http.json()["error"]
        expected = {
            "object": "error",
            "message": error["message"],
            "type": error["type"],
            "param": None,
            "code": http.status_code,
        }
        assert via_openai == expected
        if route in NATIVE_ROUTES:
            assert worker.runsync(body) == expected  # the native shape: the same error
        return
    expected = _strip_volatile(http.json())
    if body is None:
        assert _strip_volatile(via_openai) == expected
        return
    assert isinstance(via_openai, list) and len(via_openai) == 1
    assert _strip_volatile(via_openai[0]) == expected
    if route in NATIVE_ROUTES:  # the native shape: as HTTP's route of that shape
        native = httpx.post(f"{server.url}{NATIVE_ROUTES[route]}", json=body, timeout=60)
        assert _strip_volatile(worker.runsync(body)) == _strip_volatile(native.json())


def test_sigterm_stops_the_local_api_worker(worker):
    code = worker.stop(timeout=30)
    assert code == 0, worker.logs()
    assert "engines stopped" in worker.logs()
