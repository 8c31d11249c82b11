"""GET /v1/models: the served models' cards with their live queue figures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.core.cards import card
from handlers.core.operations import Operation
from handlers.core.replies import ModelList

if TYPE_CHECKING:
    from handlers.core.dispatch import Core

__all__ = ["LIST"]


async def list_models(core: Core, _body: Any = None) -> dict[str, Any]:
    infos = core.backend.models().values()
    return {"object": "list", "data": [card(i, core.backend.stats(i.id)) for i in infos]}


LIST = Operation(
    "/v1/models",
    "GET",
    list_models,
    "List served models with their capabilities.",
    ModelList,
    aliases=("/models",),
)
