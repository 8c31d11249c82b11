"""HotRoutes: POST /embeddings and /rerank skip FastAPI yet answer exactly as FastAPI does."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from handlers.core import Core
from handlers.http import HotRoutes, build_app
from tests.fakes import FakeBackend, FakeImages

CASES = [
    ("/v1/embeddings", {"model": "embedder", "input": ["a", "b"]}),
    ("/v1/embeddings", {"model": "embedder", "input": "a", "encoding_format": "base64"}),
    ("/v1/embeddings", {"model": "nope", "input": "a"}),
    ("/v1/embeddings", {"model": "embedder", "input": [1.5]}),
    ("/v1/rerank", {"model": "reranker", "query": "red", "documents": ["red", "blue"]}),
    ("/v1/rerank", {"model": "embedder", "query": "q", "documents": ["a"]}),
]


def mounted(hot: bool, make_settings) -> Starlette:
    """The /v1 app mounted under a parent app at /v1, as BentoML mounts it."""
    app = build_app()
    app.state.core = Core(make_settings(), FakeBackend(), FakeImages())
    return Starlette(routes=[Mount("/v1", app=HotRoutes(app) if hot else app)])


def stable(body: dict) -> dict:
    """A reply without its per-response id and timestamp."""
    return {k: v for k, v in body.items() if k not in ("id", "created")}


async def send(app: Starlette, method: str, path: str, **kwargs) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)


@pytest.mark.parametrize(("path", "body"), CASES)
async def test_hot_path_replies_as_fastapi_does(make_settings, path, body):
    hot = await send(mounted(True, make_settings), "POST", path, json=body)
    plain = await send(mounted(False, make_settings), "POST", path, json=body)
    assert (hot.status_code, stable(hot.json())) == (plain.status_code, stable(plain.json()))
    assert hot.headers["content-type"] == plain.headers["content-type"]


async def test_hot_path_bypasses_fastapi_and_the_rest_still_reaches_it(make_settings):
    app = mounted(True, make_settings)
    fastapi_app = app.routes[0].app.app
    seen = []

    async def spy(scope, receive, send_):
        seen.append((scope["method"], scope["path"]))
        return await build_app_call(scope, receive, send_)

    build_app_call = fastapi_app.__call__
    app.routes[0].app.app = spy
    ok = await send(app, "POST", "/v1/embeddings", json={"model": "embedder", "input": "a"})
    assert ok.status_code == 200 and seen == []
    assert (await send(app, "GET", "/v1/embeddings")).headers["allow"] == "POST"
    assert (await send(app, "GET", "/v1/models")).status_code == 200
    assert (await send(app, "POST", "/v1/nothing", json={})).status_code == 404
    assert [path for _, path in seen] == ["/v1/embeddings", "/v1/models", "/v1/nothing"]
