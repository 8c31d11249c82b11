"""The OpenAPI document of the operation table (handlers.core.dispatch.OPERATIONS), real paths."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from handlers.core.operations import Operation
from handlers.core.replies import ErrorResponse, TeiErrorResponse

__all__ = ["openapi_document"]

ERROR_STATUSES = (400, 401, 404, 413, 429, 500, 503)
TEI_STATUSES = (400, 401, 413, 422, 424, 429, 503)  # TEI's routes (handlers.errors)
REF = "#/components/schemas/{model}"
NONE_SERVED = "No model served here can run this operation (none has the {capability} capability)."


def _schema(model: type[BaseModel], components: dict[str, Any], mode: str) -> dict[str, Any]:
    """`model`'s JSON schema with its nested definitions moved into `components`."""
    schema = model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
    components.update(schema.pop("$defs", {}))
    return schema


def _operation(
    op: Operation, path: str, components: dict[str, Any], infos: list[Any]
) -> dict[str, Any]:
    reply = op.reply
    components[reply.__name__] = _schema(reply, components, "serialization")
    responses: dict[str, Any] = {
        "200": {
            "description": "Successful Response",
            "content": {"application/json": {"schema": {"$ref": REF.format(model=reply.__name__)}}},
        }
    }
    shapes = {"openai": ["ErrorResponse"], "tei": ["TeiErrorResponse"]}
    names = shapes.get(op.errors, ["ErrorResponse", "TeiErrorResponse"])  # "both"
    refs = [{"$ref": REF.format(model=name)} for name in names]
    error = {"application/json": {"schema": refs[0] if len(refs) == 1 else {"anyOf": refs}}}
    statuses = {"openai": ERROR_STATUSES, "tei": TEI_STATUSES}.get(
        op.errors, tuple(sorted({*ERROR_STATUSES, *TEI_STATUSES}))
    )
    for status in statuses:
        responses[str(status)] = {"description": "Error", "content": error}
    name = path.strip("/").replace("/", "_") or "root"
    operation: dict[str, Any] = {"operationId": name, "summary": op.summary, "responses": responses}
    if op.request is not None:
        schema = _schema(op.request, components, "validation")  # inline: `model` enum goes here
        properties = schema.get("properties", {})
        if not properties and "anyOf" in schema:  # one of several bodies (/rerank): the first
            first = schema["anyOf"][0].get("$ref", "").split("/")[-1]
            properties = components.get(first, {}).get("properties", {})
        ids = [i.id for i in infos if op.runs_on(i.capabilities)]
        if ids and "model" in properties:
            properties["model"]["enum"] = ids
        sizes = [i.dimensions for i in infos if i.dimensions]
        if sizes and "dimensions" in properties:
            properties["dimensions"]["anyOf"][0]["maximum"] = max(sizes)
        content: dict[str, Any] = {"schema": schema}
        if "model" not in properties:
            content["example"] = dict(op.example)
        elif ids:  # a body that runs, on the first served model that can run it
            content["example"] = {"model": ids[0], **op.example}
        else:
            operation["description"] = NONE_SERVED.format(capability=op.capability)
        operation["requestBody"] = {"required": True, "content": {"application/json": content}}
    return operation


def openapi_document(operations: Iterable[Operation], infos: Iterable[Any]) -> dict[str, Any]:
    """OpenAPI 3.1 for `operations`, each at its full path (servers: this host's root);
    with the served models' infos (handlers.model_info.ModelInfo), a request's `model` is an
    enum of the ids serving its capability, `dimensions` has its maximum, and each request
    body has an example naming the first of them (or the operation says no served model can
    run it)."""
    components: dict[str, Any] = {}
    components["ErrorResponse"] = _schema(ErrorResponse, components, "serialization")
    components["TeiErrorResponse"] = _schema(TeiErrorResponse, components, "serialization")
    infos = list(infos)
    paths: dict[str, Any] = {}
    for op in operations:
        for path in op.paths:  # aliases too, each at its own path
            paths.setdefault(path, {})[op.method.lower()] = _operation(op, path, components, infos)
    if "/" in paths:  # GET / is the API page (handlers.api.page), beside TEI's POST /
        page = {"200": {"description": "The API page", "content": {"text/html": {}}}}
        paths["/"]["get"] = {"operationId": "page", "summary": "This page.", "responses": page}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Embeddings and rerank (OpenAI-compatible)", "version": "1"},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": components},
    }
