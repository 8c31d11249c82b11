"""End to end over HTTP: the real BentoML service and engines, the real OpenAI SDK and httpx."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from handlers.core.table import OPERATIONS
from tests.conftest import CLIP_ID, EMBED_ID, RERANK_ID
from tests.oracles import assert_rerank_matches, embed_oracle, usage_tokens


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as session:
        yield session


def assert_openai_error(response: httpx.Response, status: int, fragment: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert fragment in body["error"]["message"]
    assert "Traceback" not in response.text
    return body["error"]


def test_models_lists_every_served_model(client):
    models = {m.id: m for m in client.models.list().data}
    assert set(models) == {EMBED_ID, RERANK_ID, CLIP_ID}
    assert models[RERANK_ID].model_extra["capabilities"] == ["rerank"]
    assert models[CLIP_ID].model_extra["capabilities"] == ["embed", "image_embed"]


def test_openai_sdk_default_base64_matches_float(client, tiny_models):
    default = client.embeddings.create(model=EMBED_ID, input=["hello world", "a cat"])
    floats = client.embeddings.create(
        model=EMBED_ID, input=["hello world", "a cat"], encoding_format="float"
    )
    assert [d.index for d in default.data] == [0, 1]
    assert len(default.data[0].embedding) == 32
    assert np.allclose(default.data[0].embedding, floats.data[0].embedding, atol=1e-6)
    assert np.isclose(np.linalg.norm(floats.data[1].embedding), 1.0, atol=1e-4)
    tokens = usage_tokens(tiny_models[EMBED_ID], ["hello world", "a cat"])
    assert default.usage.total_tokens == default.usage.prompt_tokens == tokens
    assert default.model == EMBED_ID


def test_base64_wire_format_is_little_endian_float32(http):
    body = {"model": EMBED_ID, "input": "hello", "encoding_format": "base64"}
    b64 = http.post("/v1/embeddings", json=body).json()["data"][0]["embedding"]
    floats = http.post("/v1/embeddings", json={**body, "encoding_format": "float"}).json()
    assert np.allclose(
        np.frombuffer(base64.b64decode(b64), "<f4"), floats["data"][0]["embedding"], atol=1e-6
    )


def test_dimensions_single_string_and_empty_list(client, http):
    short = client.embeddings.create(
        model=EMBED_ID, input="a dog", dimensions=8, encoding_format="float"
    )
    assert len(short.data[0].embedding) == 8
    assert np.isclose(np.linalg.norm(short.data[0].embedding), 1.0, atol=1e-4)
    empty = http.post("/v1/embeddings", json={"model": EMBED_ID, "input": []}).json()
    assert empty["data"] == [] and empty["object"] == "list"
    blank = client.embeddings.create(model=EMBED_ID, input="", encoding_format="float")
    assert len(blank.data[0].embedding) == 32


def test_errors_come_back_in_openai_shape(client, http):
    with pytest.raises(openai.NotFoundError) as info:
        client.embeddings.create(model="nope", input="a")
    assert info.value.code == "model_not_found"
    assert_openai_error(
        http.post("/v1/embeddings", json={"model": RERANK_ID, "input": "a"}),
        400,
        f"Model '{RERANK_ID}' does not expose the 'embed' capability. "
        "Detected capabilities: rerank.",
    )
    assert_openai_error(
        http.post("/v1/embeddings", json={"model": EMBED_ID, "input": [[1, 2], [3]]}),
        400,
        "token-id arrays",
    )
    assert_openai_error(
        http.post("/v1/embeddings", json={"model": EMBED_ID, "input": "a", "dimensions": 33}),
        400,
        "exceeds the model's embedding size 32",
    )
    assert_openai_error(
        http.post("/v1/embeddings", content=b"{not json", headers={"content-type": "x"}),
        400,
        "not valid JSON",
    )
    assert_openai_error(http.post("/v1/embeddings", json={"input": "a"}), 400, "model")
    assert_openai_error(
        http.post("/v1/embeddings", json={"model": EMBED_ID, "input": "a", "modality": "audio"}),
        400,
        f"Model '{EMBED_ID}' does not expose the 'audio' capability.",
    )
    assert_openai_error(http.get("/v1/no-such-route"), 404, "Not Found")


RERANK_DOCS = ["paris is the capital of france", "the dog is happy", "berlin germany", "rain"]


@pytest.mark.parametrize(
    "request_body",
    [
        {"query": "capital of france", "documents": RERANK_DOCS, "return_documents": True},
        {"query": "capital of france", "documents": RERANK_DOCS},
        {
            "query": "capital of france",
            "docs": RERANK_DOCS,
            "top_n": 2,
            "return_docs": False,
            "raw_scores": True,
        },
        {"query": "rain in berlin", "docs": RERANK_DOCS[::-1], "return_docs": True, "top_n": 3},
    ],
)
def test_rerank_agrees_with_the_models_own_logits(http, tiny_models, request_body):
    body = {"model": RERANK_ID, **request_body}
    reply = http.post("/v1/rerank", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["object"] == "rerank" and reply.json()["model"] == RERANK_ID
    tokens = usage_tokens(
        tiny_models[RERANK_ID], body.get("documents", body.get("docs")), body["query"]
    )
    assert reply.json()["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    assert_rerank_matches(tiny_models[RERANK_ID], body, reply.json()["results"])


def test_rerank_needs_a_reranker(http):
    assert_openai_error(
        http.post("/v1/rerank", json={"model": EMBED_ID, "query": "q", "docs": ["a"]}),
        400,
        "does not expose the 'rerank' capability. Detected capabilities: embed.",
    )


def test_readiness_and_health_routes(http):
    assert http.get("/readyz").status_code == 200
    assert http.get("/livez").status_code == 200
    assert http.get("/metrics").status_code == 200


def test_metrics_on_and_access_log_off_by_default(http, server):
    assert http.post("/v1/embeddings", json={"model": EMBED_ID, "input": "m"}).status_code == 200
    assert 'endpoint="/v1/embeddings"' in http.get("/metrics").text
    assert "path=/v1/embeddings" not in server.logs()


def test_access_log_and_metrics_follow_their_settings(locked_server):
    headers = {"Authorization": "Bearer test-secret-key"}
    body = {"model": EMBED_ID, "input": "m"}
    url = locked_server.url
    assert httpx.post(f"{url}/v1/embeddings", json=body, headers=headers).status_code == 200
    assert "bentoml_" not in httpx.get(f"{url}/metrics").text  # ours only: test_deploy_probes
    deadline = time.monotonic() + 5
    while "path=/v1/embeddings" not in locked_server.logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "path=/v1/embeddings" in locked_server.logs()


def test_openapi_documents_every_route_at_its_real_path(http):
    spec = http.get("/v1/openapi.json").json()
    assert set(spec["paths"]) == {path for op in OPERATIONS for path in op.paths}
    assert spec["servers"] == [{"url": "/"}]
    for path, item in spec["paths"].items():  # each documented operation answers at its path
        method = next(iter(item))
        assert http.request(method.upper(), path, json={}).status_code != 404, path


def test_bentoml_batchable_apis_share_the_core(server, http, tiny_models):
    """BentoML's own APIs live under /batch; its clients call them by name, as they are."""
    import bentoml

    with bentoml.SyncHTTPClient(server.url, timeout=60) as client:
        replies = client.embeddings(
            requests=[{"model": EMBED_ID, "input": "a dog"}, {"model": "nope", "input": "x"}]
        )
        rerank = {"model": RERANK_ID, "query": "q", "docs": ["a", "b"]}
        ranked = client.rerank(requests=[rerank])
        models = client.models()
    expected = embed_oracle(tiny_models[EMBED_ID], ["a dog"])[0]
    assert np.allclose(replies[0]["data"][0]["embedding"], expected, atol=1e-4)
    assert replies[1]["error"]["code"] == "model_not_found"
    assert_rerank_matches(tiny_models[RERANK_ID], rerank, ranked[0]["results"])
    assert {m["id"] for m in models["data"]} >= {EMBED_ID}
    direct = http.post("/batch/embeddings", json={"requests": [{"model": EMBED_ID, "input": "a"}]})
    assert direct.status_code == 200 and len(direct.json()) == 1


def test_root_paths_answer_as_v1(http, tiny_models):
    """Infinity's and vLLM's paths: /embeddings, /models, /rerank (documents as sent)."""
    body = {"model": EMBED_ID, "input": ["a dog", "a cat"]}
    root = http.post("/embeddings", json=body).json()
    v1 = http.post("/v1/embeddings", json=body).json()
    assert [d["embedding"] for d in root["data"]] == [d["embedding"] for d in v1["data"]]
    assert http.get("/models").json()["data"] == http.get("/v1/models").json()["data"]
    rerank = {"model": RERANK_ID, "query": "cat", "documents": ["a cat", "a dog"]}
    rerank["return_documents"] = True
    ranked = http.post("/rerank", json=rerank).json()
    assert_rerank_matches(tiny_models[RERANK_ID], rerank, ranked["results"], as_sent=True)
    assert_rerank_matches(
        tiny_models[RERANK_ID], rerank, http.post("/v1/rerank", json=rerank).json()["results"]
    )
    assert_openai_error(http.post("/embeddings", json={"input": "a"}), 400, "model: Field required")


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "fragment"),
    [
        ("POST", "/batch/embeddings", {"requests": 5}, 400, "validation error"),
        ("POST", "/batch/embeddings", {"nothing": []}, 400, "validation error"),
        ("GET", "/no/such/path", None, 404, "Not Found"),
        ("GET", "/batch/embeddings", None, 405, "Method Not Allowed"),
        ("GET", "/embeddings", None, 405, "Method Not Allowed"),
    ],
)
def test_every_error_is_the_openai_body(http, method, path, body, status, fragment):
    """BentoML's own validation and routing errors included."""
    assert_openai_error(http.request(method, path, json=body), status, fragment)


def test_auth_required_when_api_key_is_set(locked_server):
    url = locked_server.url
    assert_openai_error(httpx.get(f"{url}/v1/models"), 401, "API key")
    assert_openai_error(
        httpx.post(
            f"{url}/v1/embeddings",
            json={"model": EMBED_ID, "input": "a"},
            headers={"Authorization": "Bearer wrong"},
        ),
        401,
        "API key",
    )
    assert_openai_error(httpx.post(f"{url}/embeddings", json={"requests": []}), 401, "API key")
    assert httpx.get(f"{url}/readyz").status_code == 200
    assert httpx.get(f"{url}/livez").status_code == 200
    authed = openai.OpenAI(base_url=f"{url}/v1", api_key="test-secret-key", max_retries=0)
    assert len(authed.embeddings.create(model=EMBED_ID, input="a").data) == 1
    assert "test-secret-key" not in Path(locked_server.log.name).read_text(errors="replace")
