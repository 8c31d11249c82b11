"""A small bounded schemathesis slice against the real service's /v1 OpenAPI document."""

from __future__ import annotations

import httpx

from bench.fuzz import run_schemathesis


def test_schemathesis_finds_no_5xx_and_no_schema_violation(server):
    proc = run_schemathesis(server.url, max_examples=15)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
    assert httpx.get(f"{server.url}/readyz").status_code == 200


def test_openapi_limits_model_to_the_served_ids(server):
    spec = httpx.get(f"{server.url}/v1/openapi.json").json()
    body = spec["paths"]["/v1/rerank"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["model"]["enum"] == ["tiny/bert-reranker"]
    embed = spec["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"]
    assert set(embed["schema"]["properties"]["model"]["enum"]) == {
        "tiny/bert-embedder",
        "patrickjohncyh/fashion-clip",
    }
    assert embed["schema"]["properties"]["dimensions"]["anyOf"][0]["maximum"] == 32
