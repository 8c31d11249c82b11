"""Every error reply in the OpenAI shape: the middleware over another app's replies."""

from __future__ import annotations

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from handlers.api.error_bodies import OpenAIErrorBodies

OURS = {"error": {"message": "ours", "type": "invalid_request_error", "param": "x", "code": "7"}}


def app(**options) -> OpenAIErrorBodies:
    routes = [
        Route("/bento", lambda r: JSONResponse({"error": "1 validation error for Input"}, 400)),
        Route("/detail", lambda r: JSONResponse({"detail": "Not allowed here"}, 403)),
        Route("/ours", lambda r: JSONResponse(OURS, 400)),
        Route("/v1/text", lambda r: PlainTextResponse("plain", 400)),
        Route("/ok", lambda r: PlainTextResponse("fine")),
        Route("/boom", lambda r: PlainTextResponse("", 502)),
        Route("/closed", lambda r: PlainTextResponse("", 499)),
        Route(
            "/detail-list",
            lambda r: JSONResponse(
                {
                    "error": "1 validation error for Input",
                    "detail": [{"loc": ["body", "requests"], "msg": "Field required"}],
                },
                400,
            ),
        ),
    ]
    return OpenAIErrorBodies(Starlette(routes=routes), **options)


async def send(asgi, method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path)


@pytest.mark.parametrize(
    ("method", "path", "status", "message", "kind"),
    [
        ("GET", "/bento", 400, "1 validation error for Input", "invalid_request_error"),
        ("GET", "/detail", 403, "Not allowed here", "invalid_request_error"),
        ("GET", "/nowhere", 404, "Not Found", "invalid_request_error"),
        ("POST", "/ok", 405, "Method Not Allowed", "invalid_request_error"),
        ("GET", "/boom", 502, "Bad Gateway", "server_error"),
        ("GET", "/closed", 499, "Error", "invalid_request_error"),  # no standard phrase
        (
            "GET",
            "/detail-list",
            400,
            "1 validation error for Input: requests: Field required",
            "invalid_request_error",
        ),
    ],
)
async def test_other_error_replies_become_openai_bodies(method, path, status, message, kind):
    reply = await send(app(), method, path)
    assert reply.status_code == status
    assert reply.headers["content-type"] == "application/json"
    assert int(reply.headers["content-length"]) == len(reply.content)
    assert reply.json() == {
        "error": {"message": message, "type": kind, "param": None, "code": str(status)}
    }


async def test_the_allow_header_of_a_405_is_kept():
    reply = await send(app(), "POST", "/ok")
    assert set(reply.headers["allow"].split(", ")) == {"GET", "HEAD"}


async def test_openai_bodies_and_successes_pass_through_untouched():
    assert (await send(app(), "GET", "/ours")).content == orjson.dumps(OURS)
    ok = await send(app(), "GET", "/ok")
    assert (ok.status_code, ok.text) == (200, "fine")


async def test_our_own_paths_are_not_watched():
    reply = await send(app(prefixes=("/v1/",), paths=frozenset({"/bento"})), "GET", "/v1/text")
    assert (reply.status_code, reply.text) == (400, "plain")
    bento = await send(app(paths=frozenset({"/bento"})), "GET", "/bento")
    assert bento.json() == {"error": "1 validation error for Input"}
