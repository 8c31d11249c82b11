"""The /v1 HTTP routes: thin FastAPI handlers over the core, plus bearer-key middleware."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import get_route_path

from .core import Core
from .errors import ErrorKind, ServiceError, openai_error_body
from .schemas import (
    EmbeddingsRequest,
    EmbeddingsResponse,
    ErrorResponse,
    ModelList,
    RerankRequest,
    RerankResponse,
)

__all__ = ["OPEN_PATHS", "BearerAuthMiddleware", "HotRoutes", "build_app", "error_response"]

OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics", "/docs.json", "/docs", "/"})
_METHODS = {"/models": "GET", "/embeddings": "POST", "/rerank": "POST"}
_HOT = {path: f"/v1{path}" for path, method in _METHODS.items() if method == "POST"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 404, 413, 429, 500, 501, 503)
}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def error_response(error: ServiceError) -> Response:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
    return json_response(openai_error_body(error), error.status, headers)


def _body_doc(model: type) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    too_large = ServiceError(
        ErrorKind.TOO_LARGE,
        f"The request body exceeds {limit} bytes (MAX_REQUEST_BYTES).",
        code="request_too_large",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


async def _call(core: Core, request: Request, route: str, with_body: bool) -> Response:
    try:
        body = None
        if with_body:
            raw = await _read_body(request, core.settings.max_request_bytes)
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise ServiceError(
                    ErrorKind.INVALID, f"The request body is not valid JSON: {exc.msg}."
                ) from None
        return json_response(await _unless_client_leaves(request, core.dispatch(route, body)))
    except ServiceError as error:
        return error_response(error)


async def _unless_client_leaves(request: Request, work: Coroutine[Any, Any, Any]) -> Any:
    """Await `work`; if the client disconnects first, cancel it (its queued inputs are
    dropped before inference, its admission released) and answer 499 to nobody."""
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if not gone:
            raise
        task.uncancel()
        raise ServiceError(
            ErrorKind.INVALID, "The client closed the connection.", code="client_closed"
        ) from None
    finally:
        watcher.cancel()


def build_app() -> FastAPI:
    """The FastAPI app BentoML mounts at /v1; `app.state.core` is set by the service."""
    app = FastAPI(title="Embeddings and rerank (OpenAI-compatible)", docs_url=None, redoc_url=None)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        kind = {404: ErrorKind.NOT_FOUND}.get(exc.status_code, ErrorKind.INVALID)
        error = ServiceError(kind, str(exc.detail))
        body = openai_error_body(error)
        body["error"]["code"] = str(exc.status_code)
        return json_response(body, exc.status_code, dict(exc.headers or {}))  # e.g. Allow

    @app.get("/models", response_model=ModelList, responses=_ERRORS)
    async def models(request: Request) -> Response:
        """List served models with their capabilities."""
        return await _call(app.state.core, request, "/v1/models", with_body=False)

    @app.post(
        "/embeddings",
        response_model=EmbeddingsResponse,
        responses=_ERRORS,
        openapi_extra=_body_doc(EmbeddingsRequest),
    )
    async def embeddings(request: Request) -> Response:
        """Create embeddings for texts or images (OpenAI-compatible)."""
        return await _call(app.state.core, request, "/v1/embeddings", with_body=True)

    @app.post(
        "/rerank",
        response_model=RerankResponse,
        responses=_ERRORS,
        openapi_extra=_body_doc(RerankRequest),
    )
    async def rerank(request: Request) -> Response:
        """Score documents against a query, highest first."""
        return await _call(app.state.core, request, "/v1/rerank", with_body=True)

    @app.api_route(
        "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
    )
    async def unknown(path: str) -> Response:
        # BentoML mounts /v1 passively: without this, unknown paths get a plain-text 404.
        # A known path with another method lands here too (this route matches fully).
        allowed = _METHODS.get(f"/{path}")
        if allowed:
            error = ServiceError(ErrorKind.INVALID, "Method Not Allowed", code="405")
            return json_response(openai_error_body(error), 405, {"Allow": allowed})
        return error_response(ServiceError(ErrorKind.NOT_FOUND, f"Not Found: /v1/{path}"))

    def openapi() -> dict[str, Any]:
        """FastAPI's document, with each route's `model` limited to the ids that route
        serves (known once the engines are up; the document is cached only then)."""
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = FastAPI.openapi(app)
        core: Core | None = getattr(app.state, "core", None)
        if core is None or not core.ready:
            app.openapi_schema = None
            return schema
        infos = core.backend.models().values()
        for path, capability in (("/embeddings", "embed"), ("/rerank", "rerank")):
            body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
            ids = [info.id for info in infos if capability in info.capabilities]
            if ids:
                body["schema"]["properties"]["model"]["enum"] = ids
        sizes = [info.dimensions for info in infos if info.dimensions]
        if sizes:
            embeddings = schema["paths"]["/embeddings"]["post"]["requestBody"]
            dimensions = embeddings["content"]["application/json"]["schema"]["properties"]
            dimensions["dimensions"]["anyOf"][0]["maximum"] = max(sizes)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


class HotRoutes:
    """The ASGI app mounted at /v1: POST /embeddings and /rerank go straight to the core;
    every other request (docs, models, unknown paths, wrong methods) goes to FastAPI.

    Both paths run the same `_call`, so replies are identical; skipping FastAPI's routing,
    exception and exit-stack layers saves event-loop time on every request (BENCHMARKS.md).
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.state = app.state  # the service sets state.core

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            route = _HOT.get(get_route_path(scope))
            if route:
                request = Request(scope, receive)
                response = await _call(self.state.core, request, route, with_body=True)
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


class BearerAuthMiddleware:
    """ASGI middleware: when a key is configured, every path but OPEN_PATHS needs
    `Authorization: Bearer <key>` (compared in constant time); otherwise a 401."""

    def __init__(self, app: Any, key: Callable[[], str | None]) -> None:
        self.app = app
        self._key = key

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        key = self._key()
        if key:
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            expected = b"Bearer " + key.encode()
            if not hmac.compare_digest(given, expected):
                error = ServiceError(
                    ErrorKind.UNAUTHORIZED,
                    "Missing or invalid API key: send 'Authorization: Bearer <API_KEY>'.",
                    code="invalid_api_key",
                )
                response = error_response(error)
                response.headers["WWW-Authenticate"] = "Bearer"
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)
