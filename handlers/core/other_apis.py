"""Other embedding APIs' request fields (Cohere, Voyage, Jina) read as ours, or refused."""

from __future__ import annotations

from typing import Any

from handlers.errors import At, ErrorKind, ServiceError

__all__ = [
    "SYNONYMS",
    "UNHONOURED",
    "cohere_inputs",
    "input_objects",
    "our_fields",
]

SYNONYMS = {
    "output_dimension": "dimensions",  # Voyage, Cohere v2
    "output_dtype": "embedding_type",  # Voyage
    "normalized": "normalize",  # Jina
    "truncation": "truncate",  # Voyage
}
"""Another API's name of a field -> ours (the same meaning and values)."""

UNHONOURED = {
    "late_chunking": "Jina's late chunking",
    "return_multivector": "Jina's multi-vector output",
    "max_tokens": "Cohere's per-input token limit (the model's context length applies)",
}
"""Known fields of other APIs that would change the output and that this server cannot
honour: sent with a value other than null or false, each is a 400 naming it."""

COHERE_TRUNCATE = {"NONE": (False, None), "END": (True, "right"), "START": (True, "left")}
"""Cohere's truncate -> our (truncate, truncation_direction)."""


def _invalid(message: str, param: str) -> ServiceError:
    return ServiceError(ErrorKind.INVALID, message, param=param, code="unsupported_field")


def _put(data: dict[str, Any], field: str, value: Any, source: str) -> None:
    """Set our `field` from another API's `source`, refusing a contradicting value (a null
    one is no value)."""
    if data.get(field) is not None and data[field] != value:
        raise ServiceError(
            ErrorKind.INVALID,
            f"{source} contradicts {field}={data[field]!r}: send one of them.",
            param=source,
        )
    data[field] = value


def _embedding_types(data: dict[str, Any]) -> None:
    """Cohere's embedding_types (one type on this route), Jina's embedding_type 'base64'."""
    types = data.pop("embedding_types", None)
    if types is not None:
        if isinstance(types, str):
            types = [types]
        if types == []:
            raise _invalid("embedding_types: name one type.", "embedding_types")
        if not isinstance(types, list) or len(types) != 1:
            raise _invalid(
                "embedding_types: this route returns one type per request; POST /v2/embed "
                "returns several at once.",
                "embedding_types",
            )
        _put(data, "embedding_type", types[0], "embedding_types")
    if data.get("embedding_type") == "base64":
        data["embedding_type"] = "float"
        _put(data, "encoding_format", "base64", "embedding_type")


def _truncate(data: dict[str, Any]) -> None:
    value = data.get("truncate")
    if not isinstance(value, str):
        return
    if value.upper() not in COHERE_TRUNCATE:
        raise ServiceError(
            ErrorKind.INVALID,
            f"truncate: {value!r} is not a boolean nor one of NONE, START, END.",
            param="truncate",
        )
    data["truncate"], direction = COHERE_TRUNCATE[value.upper()]
    if direction is not None:
        _put(data, "truncation_direction", direction, "truncate")


def our_fields(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of an embeddings body with other APIs' fields under our names (SYNONYMS,
    Cohere's embedding_types and truncate, Jina's embedding_type 'base64').

    Raises:
        ServiceError: INVALID for a field of UNHONOURED that is on, or two fields that
            contradict each other (e.g. dimensions 64 and output_dimension 128).
    """
    data = dict(data)
    for field, what in UNHONOURED.items():
        value = data.pop(field, None)
        if value is not None and value is not False:
            raise _invalid(f"{field} ({what}) is not supported by this server.", field)
    _truncate(data)  # Cohere's strings first: Voyage's truncation is then compared to a bool
    for theirs, ours in SYNONYMS.items():
        if theirs in data:
            value = data.pop(theirs)
            if value is not None:
                _put(data, ours, value, theirs)
    _embedding_types(data)
    return data


def input_objects(items: list[Any]) -> tuple[list[Any], list[str | None] | None]:
    """Jina's and vLLM's input objects ({"text": ...}, {"image": ...}; {"audio": ...} too) as
    their strings,
    with each item's modality (None for a plain item); (items, None) when there is none.

    Raises:
        ServiceError: INVALID naming the first object that is not one of these.
    """
    if not any(isinstance(item, dict) for item in items):
        return items, None
    values: list[Any] = []
    kinds: list[str | None] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            values.append(item)
            kinds.append(None)
            continue
        fields = list(item)
        if len(fields) != 1 or fields[0] not in ("text", "image", "audio"):
            raise ServiceError(
                ErrorKind.INVALID,
                At(
                    ("input", index),
                    ": an input object has one field, 'text', 'image' or 'audio' "
                    f"(got {', '.join(map(repr, fields)) or 'none'}).",
                ),
                param="input",
            )
        if not isinstance(item[fields[0]], str):
            raise ServiceError(
                ErrorKind.INVALID,
                At(("input", index, fields[0]), ": should be a string."),
                param="input",
            )
        values.append(item[fields[0]])
        kinds.append(fields[0])
    return values, kinds


def _part(index: int, part: Any) -> dict[str, str]:
    """One Cohere v2 content part as an input object."""
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return {"text": part["text"]}
    if kind == "image_url":
        url = part.get("image_url")
        url = url.get("url") if isinstance(url, dict) else url
        if isinstance(url, str):
            return {"image": url}
    raise ServiceError(
        ErrorKind.INVALID,
        f"inputs[{index}].content[0]: a part is {{'type': 'text', 'text': ...}} or "
        "{'type': 'image_url', 'image_url': {'url': ...}}.",
        param="inputs",
    )


def cohere_inputs(inputs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Cohere v2's `inputs` as input objects, one per input.

    Raises:
        ServiceError: INVALID naming the first input that is not one text or image part
            (an input fusing several parts into one vector cannot be honoured).
    """
    items = []
    for index, item in enumerate(inputs):
        content = item.get("content")
        if not isinstance(content, list) or len(content) != 1:
            raise ServiceError(
                ErrorKind.INVALID,
                f"inputs[{index}]: this server embeds one content part per input "
                f"(got {len(content) if isinstance(content, list) else 'no'} parts).",
                param="inputs",
            )
        items.append(_part(index, content[0]))
    return items
