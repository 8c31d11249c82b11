"""The /v1 ASGI app: one route table, OpenAI-shaped 404/405, the OpenAPI document, disconnects."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from handlers.core import Core
from handlers.http import ROUTES, V1App
from tests.fakes import FakeBackend, FakeImages


def mounted(make_settings, backend: FakeBackend | None = None, **env: str) -> Starlette:
    """The /v1 and /v2 apps mounted under a parent app, as BentoML mounts them."""
    core = Core(make_settings(**env), backend or FakeBackend(), FakeImages())
    v1, v2 = V1App(), V1App(prefix="/v2")
    v1.core = v2.core = core
    return Starlette(routes=[Mount("/v1", app=v1), Mount("/v2", app=v2)])


async def send(app: Starlette, method: str, path: str, **kwargs) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)


async def test_routes_answer_through_the_core(make_settings):
    app = mounted(make_settings)
    ok = await send(app, "POST", "/v1/embeddings", json={"model": "embedder", "input": ["a"]})
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
    assert len(ok.json()["data"]) == 1
    models = await send(app, "GET", "/v1/models")
    assert {m["id"] for m in models.json()["data"]} == {"embedder", "reranker", "clip"}
    missing = await send(app, "POST", "/v1/embeddings", json={"model": "nope", "input": "a"})
    assert missing.status_code == 404
    assert missing.json()["error"]["message"].startswith("Model 'nope' is not deployed.")


@pytest.mark.parametrize(("method", "path"), [(m, p) for p, (m, _) in ROUTES.items()])
async def test_a_wrong_method_is_405_with_allow(make_settings, method, path):
    wrong = "GET" if method == "POST" else "POST"
    reply = await send(mounted(make_settings), wrong, path)
    assert reply.status_code == 405 and reply.headers["allow"] == method
    assert reply.json()["error"]["code"] == "405"


async def test_unknown_paths_and_bad_bodies_are_openai_errors(make_settings):
    app = mounted(make_settings, max_request_bytes="100")
    unknown = await send(app, "POST", "/v1/chat/completions", json={})
    assert unknown.status_code == 404 and "Not Found: /v1/chat/completions" in unknown.text
    bad = await send(app, "POST", "/v1/embeddings", content=b"{not json")
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]
    big = await send(app, "POST", "/v1/embeddings", json={"input": "x" * 200})
    assert big.status_code == 413 and "MAX_REQUEST_BYTES" in big.json()["error"]["message"]


async def test_the_openapi_document_is_built_from_the_schemas(make_settings):
    spec = (await send(mounted(make_settings), "GET", "/v1/openapi.json")).json()
    assert set(spec["paths"]) == {"/models", "/embeddings", "/rerank", "/tokenize"}
    body = spec["paths"]["/embeddings"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["model"]["enum"] == ["embedder", "clip"]
    assert body["schema"]["properties"]["dimensions"]["anyOf"][0]["maximum"] == 8
    new_fields = {"truncate", "truncation_direction", "prompt_name", "input_type"}
    assert new_fields | {"embedding_type", "normalize"} <= set(body["schema"]["properties"])
    schemas = spec["components"]["schemas"]
    assert "fingerprint" in schemas["EmbeddingsResponse"]["properties"]
    card = {"max_input_tokens", "pooling", "normalized", "prompts", "revision", "fingerprint"}
    assert card | {"dtype", "input_types"} <= set(schemas["ModelCard"]["properties"])
    rerank = spec["paths"]["/rerank"]["post"]["requestBody"]["content"]["application/json"]
    assert rerank["schema"]["properties"]["model"]["enum"] == ["reranker"]
    refs = [
        op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        for item in spec["paths"].values()
        for op in item.values()
    ]
    assert all(ref.rsplit("/", 1)[1] in spec["components"]["schemas"] for ref in refs)


class SlowBackend(FakeBackend):
    """embed() waits until cancelled; records that it was."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.cancelled = False

    async def embed(self, model, items, key=None):
        self.started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return await super().embed(model, items)


async def test_a_client_that_disconnects_cancels_its_request(make_settings):
    backend = SlowBackend()
    app = V1App()
    app.core = Core(make_settings(), backend, FakeImages())
    body = b'{"model": "embedder", "input": ["a"]}'
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    gone = asyncio.Event()

    async def receive():
        if messages:
            return messages.pop(0)
        await gone.wait()
        return {"type": "http.disconnect"}

    sent: list[dict] = []

    async def send_(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/embeddings",
        "headers": [],
        "root_path": "",
    }
    call = asyncio.ensure_future(app(scope, receive, send_))
    await asyncio.wait_for(backend.started.wait(), 5)
    gone.set()
    await asyncio.wait_for(call, 5)
    assert backend.cancelled
    assert backend.admissions == [1]  # admitted once; the context released it on cancel
