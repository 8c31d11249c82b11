"""Rerank's request schema, what the model reads of each document, and the ranked results."""

from __future__ import annotations

import json
from typing import Annotated, Any

import numpy as np
from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    PrivateAttr,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from handlers.core.schemas import PositiveInt, RequestBody
from handlers.errors import ErrorKind, ServiceError

__all__ = ["RerankRequest", "document_texts", "ranked_results"]


def _field(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def document_texts(documents: list[Any], rank_fields: list[str] | None) -> list[str]:
    """What the model reads of each document: a string as it is; an object's `text` (a
    string, as the schema checks), or, with `rank_fields`, one `name: value` line per
    named field in that order (values that are not strings as JSON).

    Raises:
        ServiceError: INVALID naming the first document that lacks a field it needs.
    """
    texts = []
    for index, doc in enumerate(documents):
        if isinstance(doc, str):
            texts.append(doc)
            continue
        names = rank_fields or ["text"]
        missing = [name for name in names if name not in doc]
        if missing:
            hint = "" if rank_fields else " (or name the fields to read with rank_fields)"
            raise ServiceError(
                ErrorKind.INVALID,
                f"documents[{index}]: the object has no {missing[0]!r} field{hint}.",
                param="documents",
            )
        if rank_fields:
            texts.append("\n".join(f"{name}: {_field(doc[name])}" for name in rank_fields))
        else:
            texts.append(doc["text"])
    return texts


def ranked_results(
    scores: list[float], raw: bool, top_n: int | None, documents: list[Any] | None
) -> list[dict[str, Any]]:
    """Results sorted by score, highest first (sigmoid unless `raw`); each result's
    `document` is the one at its index in `documents`, when given (the reply's shapes)."""
    if not raw:
        scores = (1.0 / (1.0 + np.exp(-np.asarray(scores, dtype=np.float64)))).tolist()
    ranked = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)[:top_n]
    results = []
    for index in ranked:
        result: dict[str, Any] = {"index": index, "relevance_score": scores[index]}
        if documents is not None:
            result["document"] = documents[index]
        results.append(result)
    return results


def _not_null(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("string_type", "Input should be a valid string")
    return value


def _document(value: Any) -> Any:
    if not isinstance(value, str | dict):
        raise PydanticCustomError(
            "document", "a document is a string or an object (with a 'text' field)"
        )
    if isinstance(value, dict) and not isinstance(value.get("text", ""), str):
        raise PydanticCustomError("document", "a document's 'text' field is a string")
    return value


Document = Annotated[
    Any,
    BeforeValidator(_document),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "properties": {"text": {"type": "string"}},
                    "additionalProperties": True,
                },
            ],
            "description": "A text, or an object read through its 'text' field or the "
            "fields named by rank_fields (Cohere v1, Jina).",
        }
    ),
]


class RerankRequest(RequestBody):
    # may be left out (None), but not sent as null: the schema says string
    model: Annotated[
        str | None,
        BeforeValidator(_not_null),
        WithJsonSchema(
            {
                "type": "string",
                "description": "A served reranker; may be left out when only one is served.",
            }
        ),
    ] = None
    query: str
    documents: list[Document] = Field(validation_alias=AliasChoices("documents", "docs"))
    top_n: PositiveInt | None = Field(
        None,
        validation_alias=AliasChoices("top_n", "top_k"),
        description="How many results to return (alias top_k, as Voyage sends it).",
    )
    return_documents: bool = Field(
        False,
        validation_alias=AliasChoices("return_documents", "return_docs"),
        description="Include each result's document: a string one as {'text': ...} (on /rerank, "
        "Infinity's path, as the string), an object one as sent.",
    )
    raw_scores: bool = False
    rank_fields: list[str] | None = Field(
        None,
        description="Object documents are read as one 'name: value' line per named field, "
        "in this order (Cohere v1).",
    )
    max_tokens_per_doc: PositiveInt | None = Field(
        None,
        description="Read at most this many tokens of each document, in overlapping windows "
        "(default 4096).",
    )
    max_chunks_per_doc: PositiveInt | None = Field(
        None, description="Cohere v1: read at most this many windows of each document."
    )
    instruction: str | None = Field(
        None,
        description="LLM rerankers (capability rerank_instruction): the task instruction "
        "their prompt template carries (default: the model's own).",
    )
    _texts: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _across_fields(self) -> RerankRequest:
        if self.max_tokens_per_doc is not None and self.max_chunks_per_doc is not None:
            raise ServiceError(
                ErrorKind.INVALID,
                "Give max_tokens_per_doc or max_chunks_per_doc, not both.",
                param="max_chunks_per_doc",
            )
        self._texts = document_texts(self.documents, self.rank_fields)
        return self

    @property
    def texts(self) -> list[str]:
        """What the model reads of each document (rerank.document_texts)."""
        return self._texts
