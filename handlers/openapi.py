"""The OpenAPI document of the /v1 routes, built from the wire schemas (handlers.schemas)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from .schemas import (
    EmbeddingsRequest,
    EmbeddingsResponse,
    ErrorResponse,
    ModelList,
    RerankRequest,
    RerankResponse,
    TokenizeRequest,
    TokenizeResponse,
)

__all__ = ["openapi_document"]

ERROR_STATUSES = (400, 401, 404, 413, 429, 500, 501, 503)
REF = "#/components/schemas/{model}"


def _schema(model: type[BaseModel], components: dict[str, Any], mode: str) -> dict[str, Any]:
    """`model`'s JSON schema with its nested definitions moved into `components`."""
    schema = model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
    components.update(schema.pop("$defs", {}))
    return schema


def _operation(
    summary: str,
    reply: type[BaseModel],
    components: dict[str, Any],
    request: type[BaseModel] | None = None,
) -> dict[str, Any]:
    components[reply.__name__] = _schema(reply, components, "serialization")
    responses: dict[str, Any] = {
        "200": {
            "description": "Successful Response",
            "content": {"application/json": {"schema": {"$ref": REF.format(model=reply.__name__)}}},
        }
    }
    error = {"application/json": {"schema": {"$ref": REF.format(model="ErrorResponse")}}}
    for status in ERROR_STATUSES:
        responses[str(status)] = {"description": "Error", "content": error}
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if request is not None:
        schema = _schema(request, components, "validation")  # inline: `model` enum goes here
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    return operation


def openapi_document(infos: Iterable[Any]) -> dict[str, Any]:
    """OpenAPI 3.1 for /v1; with the served models' infos (handlers.backend.ModelInfo), each
    route's `model` is an enum of the ids it serves and `dimensions` has its maximum."""
    components: dict[str, Any] = {}
    components["ErrorResponse"] = _schema(ErrorResponse, components, "serialization")
    embeddings = _operation(
        "Create embeddings for texts or images (OpenAI-compatible).",
        EmbeddingsResponse,
        components,
        EmbeddingsRequest,
    )
    rerank = _operation(
        "Score documents against a query, highest first.", RerankResponse, components, RerankRequest
    )
    tokenize = _operation(
        "Token ids, token strings and character offsets of texts, with their counts "
        "(never truncated).",
        TokenizeResponse,
        components,
        TokenizeRequest,
    )
    infos = list(infos)
    for operation, capability in ((embeddings, "embed"), (rerank, "rerank"), (tokenize, None)):
        ids = [info.id for info in infos if capability in (None, *info.capabilities)]
        if ids:
            _body(operation)["properties"]["model"]["enum"] = ids
    sizes = [info.dimensions for info in infos if info.dimensions]
    if sizes:
        _body(embeddings)["properties"]["dimensions"]["anyOf"][0]["maximum"] = max(sizes)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Embeddings and rerank (OpenAI-compatible)", "version": "1"},
        "paths": {
            "/models": {
                "get": _operation(
                    "List served models with their capabilities.", ModelList, components
                )
            },
            "/embeddings": {"post": embeddings},
            "/rerank": {"post": rerank},
            "/tokenize": {"post": tokenize},
        },
        "components": {"schemas": components},
    }


def _body(operation: dict[str, Any]) -> dict[str, Any]:
    return operation["requestBody"]["content"]["application/json"]["schema"]
