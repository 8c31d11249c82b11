"""BACKEND=ctranslate2 end to end: the tiny BERT converted on first start and served over
HTTP; rerankers and CLIP fall back to torch with a log line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import CLIP_ID, EMBED_ID, RERANK_ID
from tests.e2e.test_onnx import TEXTS, cosines, embed
from tests.oracles import assert_rerank_matches, usage_tokens
from tests.servers import ServiceProcess


@pytest.fixture(scope="module")
def ct2_server(model_env, tmp_path_factory) -> Iterator[ServiceProcess]:
    cache = tmp_path_factory.mktemp("hf-home")
    with ServiceProcess({**model_env, "BACKEND": "ctranslate2", "HF_HOME": str(cache)}) as proc:
        proc.cache = cache
        yield proc


def test_ctranslate2_embeddings_match_torch(server, ct2_server, tiny_models):
    torch_vectors = embed(server.url, EMBED_ID, TEXTS)
    ct2_vectors = embed(ct2_server.url, EMBED_ID, TEXTS)
    assert cosines(torch_vectors, ct2_vectors).min() >= 0.999
    body = {"model": EMBED_ID, "input": TEXTS}
    usage = httpx.post(f"{ct2_server.url}/v1/embeddings", json=body, timeout=30).json()["usage"]
    assert usage["prompt_tokens"] == usage_tokens(tiny_models[EMBED_ID], TEXTS)


def test_the_converted_model_reads_each_text_tokenised_once(ct2_server):
    """Infinity's CTranslate2 wrapper tokenises as sentence-transformers' Transformer: the
    load-time probe finds the collated features equal, so no batch is tokenised again."""
    log = Path(ct2_server.log.name).read_text(errors="replace")
    assert "Completed async startup hook: start" in log  # models loaded: the probe ran
    assert "its pre-process tokenises each batch" not in log


def test_conversion_lands_in_the_cache_and_models_report_their_backend(ct2_server):
    (converted,) = ct2_server.cache.glob("hub/ctranslate2_*/*/model.bin")
    assert converted.stat().st_size > 0
    assert (ct2_server.cache / "hub" / "ctranslate2.lock").exists()
    listed = httpx.get(f"{ct2_server.url}/v1/models", timeout=10).json()["data"]
    assert {m["id"]: m["backend"] for m in listed} == {
        EMBED_ID: "ctranslate2",
        RERANK_ID: "torch",
        CLIP_ID: "torch",
    }
    logs = ct2_server.logs()
    assert f"model {RERANK_ID}: the CTranslate2 engine serves text embedders only, not " in logs
    only = "the CTranslate2 engine serves text embedders only"
    assert f"model {CLIP_ID}: {only}, not image-text models" in logs


def test_rerank_keeps_working_on_torch(ct2_server, tiny_models):
    body = {"model": RERANK_ID, "query": "shoes", "documents": ["a", "b", "c"]}
    ranked = httpx.post(f"{ct2_server.url}/v1/rerank", json=body, timeout=30)
    assert ranked.status_code == 200, ranked.text
    assert_rerank_matches(tiny_models[RERANK_ID], body, ranked.json()["results"])
