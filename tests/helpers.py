"""Shared test helpers: a request through the core, and the error it raises."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.core.dispatch import Core
from handlers.errors import ServiceError

# the fake backend's embedder (tests.fakes), one two-word input
EMBED_BODY = {"model": "embedder", "input": ["a b"]}


async def error_of(core: Core, route: str, body: Any) -> ServiceError:
    """The ServiceError the core raises for `body` on `route` (fails if it answers)."""
    with pytest.raises(ServiceError) as info:
        await core.dispatch(route, body)
    return info.value


async def embed_reply(core: Core, **body: Any) -> dict[str, Any]:
    """The /v1/embeddings reply to EMBED_BODY with `body`'s fields."""
    return await core.dispatch("/v1/embeddings", {**EMBED_BODY, **body})


async def embed_error(core: Core, route: str = "/v1/embeddings", **body: Any) -> ServiceError:
    """The error of EMBED_BODY with `body`'s fields on `route`."""
    return await error_of(core, route, {**EMBED_BODY, **body})


async def vectors_of(core: Core, **body: Any) -> list[Any]:
    """The embeddings of EMBED_BODY with `body`'s fields, in input order."""
    return [item["embedding"] for item in (await embed_reply(core, **body))["data"]]
