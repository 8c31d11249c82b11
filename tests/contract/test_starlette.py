"""Starlette, as BentoML serves our ASGI apps with it (handlers/api/http.py), at its version."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.testclient import TestClient

from handlers.api.http import mounted_path
from tests.contract.pins import assert_pinned


def test_the_installed_version_is_the_pin():
    assert_pinned("starlette")  # comes with bentoml; pinned in pyproject.toml all the same


async def _below(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers the path below its mount, as V1App reads it (mounted_path)."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": mounted_path(scope).encode()})


def test_a_mount_keeps_the_full_path_and_names_itself_in_root_path():
    """What mounted_path assumes (our own, instead of Starlette's private path helper)."""
    app = Starlette(routes=[Mount("/v1", app=_below), Mount("/v10", app=_below)])
    with TestClient(app) as client:
        assert client.get("/v1/embeddings").text == "/embeddings"
        assert client.get("/v10/embeddings").text == "/embeddings"
        assert client.get("/v1/a/b").text == "/a/b"


def test_a_mount_does_not_serve_its_own_bare_path():
    """Why the one-segment paths (/embeddings, /rerank, /models) go through RootRoutes."""
    app = Starlette(routes=[Mount("/embeddings", app=_below)])
    with TestClient(app) as client:
        bare = client.post("/embeddings", follow_redirects=False)
        assert bare.status_code == 307  # a redirect to /embeddings/, not the app
        assert bare.headers["location"].endswith("/embeddings/")


class _Named:
    seen: list[str] = []

    def __init__(self, app: Any, name: str) -> None:
        self.app, self.name = app, name

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append(self.name)
        await self.app(scope, receive, send)


def test_middleware_is_built_as_cls_app_options_first_outermost():
    """BentoML's add_asgi_middleware(cls, **options) becomes Middleware(cls, **options)."""
    app = Starlette(
        routes=[Mount("/v1", app=_below)],
        middleware=[Middleware(_Named, name="outer"), Middleware(_Named, name="inner")],
    )
    _Named.seen.clear()
    with TestClient(app) as client:
        assert client.get("/v1/x").text == "/x"
    assert _Named.seen == ["outer", "inner"]
