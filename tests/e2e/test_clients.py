"""The client libraries people use, as they are, over HTTP against the real service: each
call's vectors or scores equal a plain float request's (cos >= 0.9999, |d| < 1e-6)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.conftest import CLIP_ID, EMBED_ID, RERANK_ID
from tests.e2e.test_runpod_e2e import png_data_uri
from tests.oracles import embed_oracle, rerank_scores
from tests.servers import ServiceProcess

# LiteLLM fetches its model price map from GitHub at import unless told to use its own copy
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

TEXTS = ["the quick brown fox jumps over the lazy dog", "paris is the capital city of france"]
QUERY = "capital of france"
DOCS = ["a cat on the house", "paris is the capital city of france", "the weather today"]


@pytest.fixture(scope="module")
def served(model_env: dict[str, str], cl100k) -> Iterator[ServiceProcess]:
    """The real service with TOKEN_ARRAYS=cl100k (LangChain's defaults send token ids)."""
    with ServiceProcess({**model_env, "TOKEN_ARRAYS": "cl100k"}) as proc:
        yield proc


@pytest.fixture(scope="module")
def http(served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=60) as session:
        yield session


def plain(http: httpx.Client, texts: list[str], model: str = EMBED_ID, **options) -> np.ndarray:
    """The reference: a plain /v1/embeddings float request."""
    body = {"model": model, "input": texts, "encoding_format": "float", **options}
    reply = http.post("/v1/embeddings", json=body)
    assert reply.status_code == 200, reply.text
    return np.array([item["embedding"] for item in reply.json()["data"]], dtype=np.float64)


def plain_scores(http: httpx.Client, docs: list[str] = DOCS) -> dict[int, float]:
    body = {"model": RERANK_ID, "query": QUERY, "documents": docs}
    return {
        r["index"]: r["relevance_score"]
        for r in http.post("/v1/rerank", json=body).json()["results"]
    }


def assert_same_vectors(got, expected: np.ndarray) -> None:
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == expected.shape
    for a, b in zip(got, expected, strict=True):
        assert a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) >= 0.9999


def assert_same_scores(results, expected: dict[int, float], docs: list[str] = DOCS) -> None:
    """Rerank results (index, relevance_score, document with a text) against the plain
    request's scores, highest first."""
    assert [index for index, _, _ in results] == sorted(expected, key=expected.get, reverse=True)[
        : len(results)
    ]
    for index, score, text in results:
        assert abs(score - expected[index]) < 1e-6
        assert text in (None, docs[index])


def test_the_reference_is_the_models_own(http, tiny_models):
    assert_same_vectors(plain(http, TEXTS), np.asarray(embed_oracle(tiny_models[EMBED_ID], TEXTS)))
    oracle = rerank_scores(tiny_models[RERANK_ID], QUERY, DOCS, raw_scores=False)
    for index, score in plain_scores(http).items():
        assert abs(score - oracle[index]) < 1e-4


# --------------------------------------------------------------------------- openai
def test_openai_sdk_as_it_is(served, http):
    import openai

    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)
    reply = client.embeddings.create(model=EMBED_ID, input=TEXTS)  # base64, its default
    assert_same_vectors([d.embedding for d in reply.data], plain(http, TEXTS))


# ------------------------------------------------------------------------ langchain
def test_langchain_openai_embeddings_with_its_defaults(served, http):
    """Defaults: tiktoken's cl100k_base token ids are sent, read back as the same texts."""
    from langchain_openai import OpenAIEmbeddings

    lc = OpenAIEmbeddings(model=EMBED_ID, base_url=f"{served.url}/v1", api_key="unused")
    assert_same_vectors(lc.embed_documents(TEXTS), plain(http, TEXTS))
    assert_same_vectors([lc.embed_query(TEXTS[1])], plain(http, TEXTS[1:]))


def test_langchain_without_token_ids(served, http):
    from langchain_openai import OpenAIEmbeddings

    lc = OpenAIEmbeddings(
        model=EMBED_ID,
        base_url=f"{served.url}/v1",
        api_key="unused",
        check_embedding_ctx_length=False,
    )
    assert_same_vectors(lc.embed_documents(TEXTS), plain(http, TEXTS))


def test_token_ids_count_the_models_tokens(http, cl100k, tiny_models):
    ids = [cl100k.encode(text) for text in TEXTS]
    reply = http.post("/v1/embeddings", json={"model": EMBED_ID, "input": ids}).json()
    texts = http.post("/v1/embeddings", json={"model": EMBED_ID, "input": TEXTS}).json()
    assert reply["usage"] == texts["usage"]
    assert_same_vectors([d["embedding"] for d in reply["data"]], plain(http, TEXTS))


def test_langchain_defaults_on_a_refusing_server_name_both_fixes(server):
    import openai
    from langchain_openai import OpenAIEmbeddings

    lc = OpenAIEmbeddings(
        model=EMBED_ID, base_url=f"{server.url}/v1", api_key="unused", max_retries=0
    )
    with pytest.raises(openai.BadRequestError) as info:
        lc.embed_documents(TEXTS)
    message = info.value.body["message"]
    assert "check_embedding_ctx_length=False" in message and "TOKEN_ARRAYS=cl100k" in message


# -------------------------------------------------------------------------- litellm
@pytest.fixture(scope="module")
def litellm():
    import litellm

    return litellm


@pytest.mark.parametrize(
    ("provider", "base"),
    [
        ("openai", "/v1"),
        ("jina_ai", "/v1"),
        ("infinity", ""),  # Infinity's root paths: /embeddings
        ("hosted_vllm", "/v1"),
        ("cohere", "/v1/embed"),  # LiteLLM's cohere api_base is the whole URL
        ("cohere", "/v2/embed"),
    ],
)
def test_litellm_embedding(litellm, served, http, provider, base):
    options = {"input_type": "search_document"} if provider == "cohere" else {}
    reply = litellm.embedding(
        model=f"{provider}/{EMBED_ID}",
        input=TEXTS,
        api_base=served.url + base,
        api_key="unused",
        **options,
    )
    expected = plain(http, TEXTS, **options)
    assert_same_vectors([d["embedding"] for d in reply.data], expected)


@pytest.mark.parametrize(
    ("provider", "base"),
    [
        ("cohere", ""),  # /v2/rerank
        ("cohere", "/v1/rerank"),  # LiteLLM's v1 path
        ("jina_ai", ""),  # /v1/rerank
        ("infinity", ""),  # /rerank: Infinity's reply, documents as sent
        ("hosted_vllm", "/v1"),  # /v1/rerank
    ],
)
def test_litellm_rerank(litellm, served, http, provider, base):
    reply = litellm.rerank(
        model=f"{provider}/{RERANK_ID}",
        query=QUERY,
        documents=DOCS,
        top_n=2,
        return_documents=True,
        api_base=served.url + base,
        api_key="unused",
    )
    results = [
        (r["index"], r["relevance_score"], (r.get("document") or {}).get("text"))
        for r in reply.results
    ]
    assert_same_scores(results, plain_scores(http))


async def test_litellm_async_embedding(litellm, served, http):
    reply = await litellm.aembedding(
        model=f"infinity/{EMBED_ID}", input=TEXTS, api_base=served.url, api_key="unused"
    )
    assert_same_vectors([d["embedding"] for d in reply.data], plain(http, TEXTS))


# --------------------------------------------------------------------------- cohere
@pytest.fixture(scope="module")
def cohere_clients(served):
    import cohere

    return (
        cohere.Client(api_key="unused", base_url=served.url, timeout=60),
        cohere.ClientV2(api_key="unused", base_url=served.url, timeout=60),
    )


def test_cohere_v1_embed(cohere_clients, http):
    co, _ = cohere_clients
    reply = co.embed(texts=TEXTS, model=EMBED_ID, input_type="search_query")
    assert_same_vectors(reply.embeddings, plain(http, TEXTS, input_type="search_query"))
    typed = co.embed(
        texts=TEXTS, model=EMBED_ID, input_type="search_document", embedding_types=["float", "int8"]
    )
    assert_same_vectors(typed.embeddings.float_, plain(http, TEXTS, input_type="search_document"))
    int8 = plain(http, TEXTS, input_type="search_document", embedding_type="int8")
    assert np.array_equal(np.array(typed.embeddings.int8), int8)
    assert typed.texts == TEXTS and typed.meta.billed_units.input_tokens > 0


def test_cohere_v1_embed_batches_many_texts(cohere_clients, http):
    """The SDK splits past 96 texts into parallel requests and merges them."""
    co, _ = cohere_clients
    texts = [f"the {word} is red" for word in ("cat", "dog", "bird", "fish", "car")] * 25
    reply = co.embed(texts=texts, model=EMBED_ID, input_type="search_document")
    assert_same_vectors(reply.embeddings, plain(http, texts, input_type="search_document"))


def test_cohere_v2_embed(cohere_clients, http):
    _, co2 = cohere_clients
    reply = co2.embed(
        texts=TEXTS,
        model=EMBED_ID,
        input_type="search_document",
        embedding_types=["float", "ubinary", "base64"],
        output_dimension=16,
    )
    options = {"input_type": "search_document", "dimensions": 16}
    expected = plain(http, TEXTS, **options)
    assert_same_vectors(reply.embeddings.float_, expected)
    decoded = [np.frombuffer(base64.b64decode(s), dtype="<f4") for s in reply.embeddings.base64]
    assert_same_vectors(decoded, expected)
    ubinary = plain(http, TEXTS, embedding_type="ubinary", **options)
    assert np.array_equal(np.array(reply.embeddings.ubinary), ubinary)


def test_cohere_v2_embed_images(cohere_clients, http):
    _, co2 = cohere_clients
    image = png_data_uri()
    reply = co2.embed(images=[image], model=CLIP_ID, input_type="image", embedding_types=["float"])
    expected = plain(http, [image], model=CLIP_ID, modality="image")
    assert_same_vectors(reply.embeddings.float_, expected)


def test_cohere_v1_rerank_document_text(cohere_clients, http):
    co, _ = cohere_clients
    reply = co.rerank(query=QUERY, documents=DOCS, model=RERANK_ID, top_n=2, return_documents=True)
    results = [(r.index, r.relevance_score, r.document.text) for r in reply.results]
    assert all(text is not None for _, _, text in results)
    assert_same_scores(results, plain_scores(http))


def test_cohere_v2_rerank(cohere_clients, http):
    _, co2 = cohere_clients
    reply = co2.rerank(query=QUERY, documents=DOCS, model=RERANK_ID, top_n=3)
    assert_same_scores(
        [(r.index, r.relevance_score, None) for r in reply.results], plain_scores(http)
    )


# ---------------------------------------------------------------------------- voyage
@pytest.fixture(scope="module")
def voyage(served):
    import voyageai

    return voyageai.Client(api_key="unused", base_url=f"{served.url}/v1", max_retries=0)


def test_voyage_embed(voyage, http):
    reply = voyage.embed(TEXTS, model=EMBED_ID, input_type="document")
    assert_same_vectors(reply.embeddings, plain(http, TEXTS, input_type="document"))
    assert reply.total_tokens > 0


@pytest.mark.parametrize("dtype", ["int8", "uint8", "binary", "ubinary", "float"])
def test_voyage_embed_output_dimension_and_dtype(voyage, http, dtype):
    """The client decodes the base64 by output_dtype: the server must honour it."""
    reply = voyage.embed(
        TEXTS, model=EMBED_ID, input_type="query", output_dimension=16, output_dtype=dtype
    )
    expected = plain(http, TEXTS, input_type="query", dimensions=16, embedding_type=dtype)
    if dtype == "float":
        assert_same_vectors(reply.embeddings, expected)
    else:
        assert np.array_equal(np.array(reply.embeddings), expected)


def test_voyage_rerank(voyage, http):
    reply = voyage.rerank(QUERY, DOCS, model=RERANK_ID, top_k=2)
    results = [(r.index, r.relevance_score, r.document) for r in reply.results]
    assert_same_scores(results, plain_scores(http))
    assert reply.total_tokens > 0


# ------------------------------------------------------------------ Jina-shaped bodies
def test_jina_input_objects_mixed_text_and_image(http):
    image = png_data_uri()
    body = {"model": CLIP_ID, "input": [{"text": "a red shirt"}, {"image": image}]}
    reply = http.post("/v1/embeddings", json=body)
    assert reply.status_code == 200, reply.text
    got = [d["embedding"] for d in reply.json()["data"]]
    expected = np.vstack(
        [
            plain(http, ["a red shirt"], model=CLIP_ID),
            plain(http, [image], model=CLIP_ID, modality="image"),
        ]
    )
    assert_same_vectors(got, expected)
    bare = image.split(",", 1)[1]  # base64 without the data: prefix
    again = http.post("/v1/embeddings", json={"model": CLIP_ID, "input": [{"image": bare}]})
    assert_same_vectors([again.json()["data"][0]["embedding"]], expected[1:])


def test_jina_task_and_normalized(http):
    body = {"model": EMBED_ID, "input": TEXTS, "task": "query", "normalized": False}
    got = [d["embedding"] for d in http.post("/v1/embeddings", json=body).json()["data"]]
    expected = plain(http, TEXTS, prompt_name="query", normalize=False)
    assert np.allclose(got, expected, atol=1e-6)
    assert not np.allclose(np.linalg.norm(expected, axis=1), 1.0)  # really not normalised
    unknown = http.post("/v1/embeddings", json={**body, "task": "retrieval.query"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"].endswith("Its prompts: query, document.")
