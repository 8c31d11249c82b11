"""The operation table's type: each API operation declared once, every transport derives from it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Operation", "mount_prefixes", "root_paths"]


@dataclass(frozen=True)
class Operation:
    """One API operation. `handlers.core.dispatch.OPERATIONS` lists the service's; the core
    dispatches by `path`, the HTTP apps serve it, the OpenAPI document and the RunPod
    adapter's routes and accepted shapes are built from it, and its prefix is left out
    of request tracing."""

    path: str  # the full path, e.g. /v1/embeddings (also the RunPod openai_route)
    method: str  # GET (no body) or POST (a JSON body)
    handler: Callable[[Any, Any], Awaitable[Any]]  # (core, body) -> reply body
    summary: str
    reply: type  # the pydantic model of the reply body
    request: type | None = None  # the pydantic model of the request body (POST)
    capability: str | None = None  # the OpenAPI `model` enum lists models with it; None: all
    aliases: tuple[str, ...] = ()  # more paths answering as `path` (e.g. /embeddings)
    also: tuple[str, ...] = ()  # more capabilities that can run it (the enum lists them too)
    # a request body that runs (POST), without `model`: the OpenAPI document adds a served
    # model that can run it, and the API page's form starts from it
    example: Mapping[str, Any] = field(default_factory=dict)
    errors: str = "openai"  # its error bodies over HTTP: OpenAI's, or TEI's ("tei")

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path, *self.aliases)

    def runs_on(self, capabilities: frozenset[str]) -> bool:
        """Whether a model with `capabilities` can run it."""
        return self.capability is None or bool({self.capability, *self.also} & capabilities)


def mount_prefixes(operations: Iterable[Operation]) -> tuple[str, ...]:
    """The first path segments the operations live under (/v1, /v2), in order; paths of
    one segment (root aliases such as /embeddings) are `root_paths`."""
    paths = (path for op in operations for path in op.paths if path.count("/") > 1)
    return tuple(dict.fromkeys("/" + path.strip("/").split("/")[0] for path in paths))


def root_paths(operations: Iterable[Operation]) -> tuple[str, ...]:
    """The operations' paths of one segment (/embeddings, /rerank, /models), in order."""
    return tuple(path for op in operations for path in op.paths if path.count("/") == 1)
