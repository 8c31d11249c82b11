"""The API's HTTP routes over the core's operation table (plain ASGI), bearer-key auth."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from handlers.api.asgi import ASGIApp, Receive, Send
from handlers.api.openapi import openapi_document
from handlers.api.page import PAGE_PATHS
from handlers.api.wire import dumps
from handlers.core.dispatch import REPLY_HEADERS, Core
from handlers.errors import ErrorKind, ServiceError, openai_error_body, tei_error_body

__all__ = [
    "OPENAPI_PATH",
    "OPEN_PATHS",
    "BearerAuthMiddleware",
    "RootRoutes",
    "V1App",
    "error_response",
]

OPENAPI_PATH = "/v1/openapi.json"  # the document of every operation, /v2 ones included
# open to GET only (POST / is TEI's route)
OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics", "/docs.json", "/docs", "/"})


class Reply:
    """A JSON response: status, body and extra headers, sent over ASGI in two messages."""

    def __init__(self, body: Any, status: int = 200, headers: dict[str, str] | None = None):
        self.status = status
        self.body = dumps(body)
        self.headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.body)).encode()),
        ]
        self.headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]

    async def __call__(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


def error_response(error: ServiceError, headers: dict[str, str] | None = None) -> Reply:
    """The error's reply: OpenAI's body, or TEI's where the error speaks TEI."""
    extra = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
    status, body = error.status, openai_error_body(error)
    if error.dialect == "tei":
        status, body = tei_error_body(error)
    return Reply(body, status, {**extra, **(headers or {})})


def _client_closed() -> ServiceError:
    return ServiceError(
        ErrorKind.INVALID, "The client closed the connection.", code="client_closed"
    )


async def _read_body(scope: dict[str, Any], receive: Receive, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    too_large = ServiceError(
        ErrorKind.TOO_LARGE,
        f"The request body exceeds {limit} bytes (MAX_REQUEST_BYTES).",
        code="request_too_large",
    )
    declared = dict(scope.get("headers") or []).get(b"content-length", b"")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _client_closed()
        body += message.get("body", b"")
        if len(body) > limit:
            raise too_large
        if not message.get("more_body"):
            return bytes(body)


async def _unless_client_leaves(receive: Receive, work: Coroutine[Any, Any, Any]) -> Any:
    """Await `work`; if the client disconnects first, cancel it (its queued inputs are
    dropped before inference, its admission released) and answer nobody."""
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
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
        raise _client_closed() from None
    finally:
        watcher.cancel()


def mounted_path(scope: dict[str, Any]) -> str:
    """The request's path below the mount it reached (ASGI: `path` holds the mount's
    `root_path` in front; an app not mounted has none)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path == root:
        return ""
    if root and path.startswith(root + "/"):
        return path[len(root) :]
    return path


class V1App:
    """The ASGI app BentoML mounts at `prefix` (one per prefix of the operation table: /v1,
    /v2; "" for the root paths, which RootRoutes hands it): the core's operations under it
    (and OPENAPI_PATH), OpenAI-shaped errors for unknown paths (404) and wrong methods (405
    with Allow). `core()` gives the core of the running service, read per request (the app
    holds no state of its own); while it gives None every request is a 503."""

    def __init__(self, prefix: str = "/v1", core: Callable[[], Core | None] = lambda: None):
        self.prefix = prefix
        self.core = core
        self._openapi: tuple[Core, dict[str, Any]] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = self.prefix + mounted_path(scope)
        core = self.core()
        if core is None:
            error = ServiceError(ErrorKind.NOT_READY, "The service is starting. Retry shortly.")
            return await error_response(error)(send)
        operation = core.routes.get(path)
        method = operation.method if operation is not None else "GET"
        if operation is None and path != OPENAPI_PATH:
            error = ServiceError(ErrorKind.NOT_FOUND, f"Not Found: {path}")
            return await error_response(error)(send)
        if scope["method"] != method:
            body = openai_error_body(ServiceError(ErrorKind.INVALID, "Method Not Allowed"))
            body["error"]["code"] = "405"
            allowed = f"GET, {method}" if path in PAGE_PATHS else method  # GET /: the page
            return await Reply(body, 405, {"Allow": allowed})(send)
        try:
            if operation is None:
                return await Reply(self.openapi(core))(send)
            body = await self._dispatch(core, path, scope, receive)
            fields = body if isinstance(body, dict) else {}  # TEI's replies are lists
            headers = {h: str(fields[f]) for f, h in REPLY_HEADERS.items() if fields.get(f)}
            await Reply(body, headers=headers)(send)
        except ServiceError as error:
            if operation is not None and operation.errors == "tei":
                error = error.renamed({}, "tei")
            await error_response(error)(send)

    async def _dispatch(
        self, core: Core, route: str, scope: dict[str, Any], receive: Receive
    ) -> Any:
        body = None
        if scope["method"] == "POST":
            raw = await _read_body(scope, receive, core.settings.max_request_bytes)
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise ServiceError(
                    ErrorKind.INVALID, f"The request body is not valid JSON: {exc.msg}."
                ) from None
        return await _unless_client_leaves(receive, core.dispatch(route, body))

    def openapi(self, core: Core) -> dict[str, Any]:
        """The document of `core`'s routes, built from the wire schemas; each route's `model`
        is limited to the ids it serves once the models are loaded (cached from then on)."""
        if self._openapi is not None and self._openapi[0] is core:
            return self._openapi[1]
        infos = list(core.backend.models().values())
        document = openapi_document(core.operations, infos)
        if infos:
            self._openapi = (core, document)
        return document


class BearerAuthMiddleware:
    """ASGI middleware: when a key is configured, every path but OPEN_PATHS needs
    `Authorization: Bearer <key>` (compared in constant time); otherwise a 401.

    `key()` returns the key, or None for no auth; it raises a ServiceError while the key
    is not known (the service is not running), and that error is the answer: fail closed.
    """

    def __init__(self, app: ASGIApp, key: Callable[[], str | None]) -> None:
        self.app = app
        self._key = key

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or (
            scope["path"] in OPEN_PATHS and scope.get("method") in ("GET", "HEAD")
        ):
            return await self.app(scope, receive, send)
        try:
            key = self._key()
        except ServiceError as error:
            return await error_response(error)(send)
        if key:
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            expected = b"Bearer " + key.encode()
            if not hmac.compare_digest(given, expected):
                refused = ServiceError(
                    ErrorKind.UNAUTHORIZED,
                    "Missing or invalid API key: send 'Authorization: Bearer <API_KEY>'.",
                    code="invalid_api_key",
                )
                return await error_response(refused, {"WWW-Authenticate": "Bearer"})(send)
        return await self.app(scope, receive, send)


class RootRoutes:
    """ASGI middleware: the operations' one-segment paths (/embeddings, /rerank, /models,
    where Infinity and vLLM serve them) go to `root` (a V1App with prefix ""), the rest on
    to the app. A mount cannot serve them: a mount at /embeddings matches /embeddings/..."""

    def __init__(self, app: ASGIApp, root: V1App, paths: frozenset[str]) -> None:
        self.app = app
        self.root = root
        self.paths = paths

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            return await self.root(scope, receive, send)
        return await self.app(scope, receive, send)
