"""Authentication fails closed: no request reaches a route while the key is not known."""

from __future__ import annotations

import httpx
import pytest

from handlers.api.http import BearerAuthMiddleware
from handlers.errors import ErrorKind, ServiceError


async def _reached(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"reached"})


def _client(key) -> httpx.AsyncClient:
    app = BearerAuthMiddleware(_reached, key=key)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test")


def _unknown() -> str | None:
    raise ServiceError(ErrorKind.NOT_READY, "not started", code="not_ready")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer anything"}])
async def test_an_unknown_key_refuses_every_route_with_503(headers):
    async with _client(_unknown) as client:
        reply = await client.post("/v1/embeddings", headers=headers)
        assert reply.status_code == 503
        assert reply.json()["error"]["code"] == "not_ready"
        assert (await client.get("/readyz")).text == "reached"  # health routes stay open


async def test_a_known_key_is_required_and_no_key_means_open():
    async with _client(lambda: "s3cret") as client:
        assert (await client.get("/v1/models")).status_code == 401
        wrong = await client.get("/v1/models", headers={"Authorization": "Bearer s3cre"})
        assert wrong.status_code == 401
        right = await client.get("/v1/models", headers={"Authorization": "Bearer s3cret"})
        assert right.text == "reached"
    async with _client(lambda: None) as client:
        assert (await client.get("/v1/models")).text == "reached"


async def test_the_service_refuses_requests_before_it_is_constructed():
    """Through BentoML's own app for the service, with no instance running: 503, even for
    a request that carries a key, and the route is never reached."""
    import service

    with pytest.raises(ServiceError) as refused:
        service._api_key()
    assert refused.value.kind is ErrorKind.NOT_READY
    assert service._draining() is False

    app = service.EmbeddingService.to_asgi()
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for method, path in [("GET", "/v1/models"), ("POST", "/v1/embeddings")]:
            reply = await client.request(method, path, headers={"Authorization": "Bearer x"})
            assert reply.status_code == 503, reply.text
            assert reply.json()["error"]["type"] == "service_unavailable_error"
