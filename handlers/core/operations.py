"""The operation table's type: each API operation declared once, every transport derives from it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Operation", "mount_prefixes"]


@dataclass(frozen=True)
class Operation:
    """One API operation. `handlers.core.dispatch.OPERATIONS` lists the service's; the core
    dispatches by `path`, the HTTP apps serve it, the OpenAPI document and the RunPod
    adapter's routes and accepted shapes are built from it, and its prefix is left out
    of request tracing."""

    path: str  # the full path, e.g. /v1/embeddings (also the RunPod openai_route)
    method: str  # GET (no body) or POST (a JSON body)
    handler: Callable[[Any, Any], Awaitable[dict[str, Any]]]  # (core, body) -> reply body
    summary: str
    reply: type  # the pydantic model of the reply body
    request: type | None = None  # the pydantic model of the request body (POST)
    capability: str | None = None  # the OpenAPI `model` enum lists models with it; None: all


def mount_prefixes(operations: Iterable[Operation]) -> tuple[str, ...]:
    """The first path segments the operations live under (/v1, /v2), in order."""
    return tuple(dict.fromkeys("/" + op.path.strip("/").split("/")[0] for op in operations))
