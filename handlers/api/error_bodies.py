"""ASGI middleware: every error reply, BentoML's and Starlette's included, as an OpenAI body."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson

from handlers.api.asgi import ASGIApp, Receive, Scope, Send
from handlers.errors import ErrorKind

__all__ = ["OpenAIErrorBodies", "openai_shaped"]

_KINDS = {kind.status: kind for kind in ErrorKind}
_DROPPED = (b"content-length", b"content-type")


def _is_openai(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("error"), dict)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a status outside the standard's list (499, ...)
        return "Error"


def _details(detail: Any) -> str:
    """Pydantic-style `detail` items (BentoML's input validation) as `loc: msg` lines."""
    items = [d for d in detail if isinstance(d, dict) and "msg" in d][:5]
    return "; ".join(
        ".".join(str(p) for p in d.get("loc", ()) if p != "body") + f": {d['msg']}" for d in items
    )


def _message(raw: bytes, status: int) -> str:
    """What another layer said: its JSON `error` or `detail` (with the fields a validation
    `detail` list names), else its text."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        detail = _details(body["detail"]) if isinstance(body.get("detail"), list) else ""
        for field in ("error", "detail", "message"):
            if isinstance(body.get(field), str) and body[field]:
                return f"{body[field]}: {detail}" if detail else body[field]
        if detail:
            return detail
    text = raw.decode("utf-8", errors="replace").strip()
    return text or _phrase(status)


def openai_shaped(status: int, raw: bytes) -> bytes | None:
    """The OpenAI error body for an error reply `raw` of `status`; None if it is one."""
    try:
        if _is_openai(orjson.loads(raw)):
            return None
    except orjson.JSONDecodeError:
        pass
    kind = _KINDS.get(status, ErrorKind.INTERNAL if status >= 500 else ErrorKind.INVALID)
    error = {"message": _message(raw, status), "type": kind.type, "param": None}
    return orjson.dumps({"error": {**error, "code": str(status)}})


class OpenAIErrorBodies:
    """Rewrites an error reply (status >= 400) that is not already an OpenAI error body,
    such as BentoML's request validation of its batchable APIs or a 404 for an unknown path,
    into `{"error": {"message", "type", "param", "code"}}`; status and other headers (Allow,
    Retry-After) are kept. Successful replies pass through untouched, streamed as sent.
    Paths under `prefixes` and in `paths` (ours, which answer OpenAI bodies already) are not
    watched, so the API's own requests pay nothing for it."""

    def __init__(
        self, app: ASGIApp, prefixes: tuple[str, ...] = (), paths: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.prefixes = prefixes
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in self.paths or path.startswith(self.prefixes):
            return await self.app(scope, receive, send)
        start: dict[str, Any] | None = None
        chunks: list[bytes] = []

        async def reshape(message: dict[str, Any]) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            raw = b"".join(chunks)
            body = openai_shaped(start["status"], raw)
            headers = list(start.get("headers") or [])
            if body is not None:
                headers = [(k, v) for k, v in headers if k.lower() not in _DROPPED]
                headers += [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": raw if body is None else body})

        await self.app(scope, receive, reshape)
