"""BACKEND=optimum end to end: a plain model folder exported on first start, served over HTTP."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from handlers.backend import EngineBackend
from tests.conftest import CLIP_ID, EMBED_ID, RERANK_ID
from tests.imagehost import png_bytes
from tests.servers import ServiceProcess

TEXTS = ["a red dress", "blue running shoes for the trail", "x " * 300, "ok"]


@pytest.fixture(scope="module")
def onnx_server(model_env, tmp_path_factory) -> Iterator[ServiceProcess]:
    cache = tmp_path_factory.mktemp("hf-home")
    with ServiceProcess({**model_env, "BACKEND": "optimum", "HF_HOME": str(cache)}) as proc:
        proc.cache = cache
        yield proc


def embed(url: str, model: str, texts: list[str]) -> np.ndarray:
    response = httpx.post(
        f"{url}/v1/embeddings",
        json={"model": model, "input": texts, "encoding_format": "float"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return np.array([item["embedding"] for item in response.json()["data"]])


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_optimum_embeddings_match_torch(server, onnx_server):
    torch_vectors = embed(server.url, EMBED_ID, TEXTS)
    onnx_vectors = embed(onnx_server.url, EMBED_ID, TEXTS)
    assert cosines(torch_vectors, onnx_vectors).min() >= 0.9999


def test_export_lands_in_the_model_cache_and_models_report_their_backend(onnx_server):
    (exported,) = onnx_server.cache.glob("onnx/*/fp32/model.onnx")
    assert exported.stat().st_size > 0
    listed = httpx.get(f"{onnx_server.url}/v1/models", timeout=10).json()["data"]
    assert {m["id"]: m["backend"] for m in listed} == {
        EMBED_ID: "optimum",
        RERANK_ID: "torch",
        CLIP_ID: "torch",
    }
    logs = onnx_server.logs()
    assert f"model {RERANK_ID}: ONNX export covers text embedders only, not rerankers" in logs
    assert f"model {CLIP_ID}: ONNX export covers text embedders only, not CLIP" in logs


def test_rerank_and_images_keep_working_on_torch(onnx_server):
    ranked = httpx.post(
        f"{onnx_server.url}/v1/rerank",
        json={"model": RERANK_ID, "query": "shoes", "documents": ["a", "b", "c"]},
        timeout=30,
    )
    assert ranked.status_code == 200, ranked.text
    assert sorted(r["index"] for r in ranked.json()["results"]) == [0, 1, 2]
    image = base64.b64encode(png_bytes()).decode()
    images = httpx.post(
        f"{onnx_server.url}/v1/embeddings",
        json={"model": CLIP_ID, "input": [image], "modality": "image"},
        timeout=30,
    )
    assert images.status_code == 200, images.text


async def test_int8_is_close_to_torch(make_settings, tiny_models, tmp_path):
    """Through the real engine in-process: int8 keeps the ranking signal of fp32."""
    vectors = {}
    for backend, dtype in (("torch", "auto"), ("optimum", "int8")):
        settings = make_settings(
            model_names=str(tiny_models[EMBED_ID]),
            served_model_names=EMBED_ID,
            backend=backend,
            dtypes=dtype,
            hf_home=str(tmp_path),
        )
        engine = EngineBackend(settings)
        await engine.start()
        try:
            assert engine.models()[EMBED_ID].backend == backend
            found, _ = await engine.embed(EMBED_ID, TEXTS)
            vectors[backend] = np.stack(found)
        finally:
            await engine.stop()
    assert [p.name for p in tmp_path.glob("onnx/*/int8/*.onnx")] == ["model_quantized.onnx"]
    similarity = cosines(vectors["torch"], vectors["optimum"])
    print("int8 cosine to torch on the tiny model:", similarity)
    assert similarity.min() >= 0.99
