"""A client generated from the served OpenAPI document (openapi-python-client, as a user runs
it) reaches the real routes: embeddings and /v2/rerank through the generated code."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import EMBED_ID, RERANK_ID
from tests.oracles import embed_oracle, rerank_scores

# installed by `make` (the Makefile's GENERATOR) into a folder of its own: it pins typer below ours
GENERATOR = Path(__file__).resolve().parents[2] / ".venv" / "openapi-generator"


@pytest.fixture(scope="module")
def generator() -> str:
    """The generator's folder, for PYTHONPATH."""
    if not (GENERATOR / "openapi_python_client").is_dir():
        pytest.fail(f"openapi-python-client is missing from {GENERATOR}: run `make test` once")
    return str(GENERATOR)


@pytest.fixture(scope="module")
def generated(server, generator, tmp_path_factory):
    """The package generated from /v1/openapi.json, imported as `served_api`."""
    folder = tmp_path_factory.mktemp("client")
    spec = httpx.get(f"{server.url}/v1/openapi.json", timeout=30).json()
    (folder / "spec.json").write_text(json.dumps(spec))
    (folder / "config.json").write_text(json.dumps({"post_hooks": []}))
    run = "from openapi_python_client.cli import app; app()"
    argv = [sys.executable, "-c", run, "generate", "--path", "spec.json", "--meta", "none"]
    argv += ["--output-path", "served_api", "--config", "config.json"]
    env = {**os.environ, "PYTHONPATH": generator}
    out = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("served_api")
    finally:
        sys.path.remove(str(folder))


def test_the_generated_client_embeds_and_reranks_on_the_real_routes(server, generated, tiny_models):
    client = generated.Client(base_url=server.url, raise_on_unexpected_status=True)
    api = importlib.import_module("served_api.api.default")
    models = importlib.import_module("served_api.models")

    texts = ["the quick brown fox", "a cat"]
    body = models.V1EmbeddingsEmbeddingsRequest.from_dict({"model": EMBED_ID, "input": texts})
    reply = importlib.import_module(f"{api.__name__}.v1_embeddings").sync_detailed(
        client=client, body=body
    )
    assert reply.status_code == 200
    got = np.array([item.embedding for item in reply.parsed.data], dtype=np.float32)
    assert (got * embed_oracle(tiny_models[EMBED_ID], texts)).sum(1).min() > 0.9999

    query, docs = "capital of france", ["paris is the capital of france", "a dog"]
    request = {"model": RERANK_ID, "query": query, "documents": docs}
    body = models.V2RerankRerankRequest.from_dict(request)
    reply = importlib.import_module(f"{api.__name__}.v2_rerank").sync_detailed(
        client=client, body=body
    )
    assert reply.status_code == 200
    scores = {r.index: r.relevance_score for r in reply.parsed.results}
    expected = rerank_scores(tiny_models[RERANK_ID], query, docs, raw_scores=False)
    assert np.allclose([scores[i] for i in range(len(docs))], expected, atol=1e-5)
