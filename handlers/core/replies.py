"""Reply schemas (pydantic v2) of every operation: what the OpenAPI document says they return,
and the id and time every reply carries."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "ClassifyResponse",
    "CohereEmbedResponse",
    "EmbeddingsResponse",
    "ErrorResponse",
    "InfinityClassifyResponse",
    "ModelList",
    "RerankResponse",
    "RerankV2Response",
    "ScoreResponse",
    "TeiErrorResponse",
    "TokenizeResponse",
    "reply_meta",
]


def reply_meta() -> dict[str, Any]:
    """A reply's `id` and `created` (Unix seconds)."""
    return {"id": f"infinity-{uuid.uuid4()}", "created": int(time.time())}


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class SparseEmbedding(BaseModel):
    indices: list[int] = Field(description="Active dimensions (vocabulary ids), ascending.")
    values: list[float]
    tokens: list[str] | None = Field(None, description="return_tokens: each index's token.")


Embedding = list[float] | list[int] | str | SparseEmbedding | list[list[float]] | list[list[int]]


class EmbeddingObject(BaseModel):
    object: Literal["embedding"] = "embedding"
    embedding: Embedding | None = Field(
        None,
        description="The one output asked: a vector (a list, or base64); a sparse "
        "encoder's {'indices', 'values'}; a multi-vector model's token vectors (a list of "
        "rows, or base64 of all of them).",
    )
    embeddings: dict[Literal["dense", "sparse", "multi_vector"], Embedding] | None = Field(
        None,
        description="Several outputs asked (the request's outputs): each, as embedding "
        "would carry it alone.",
    )
    index: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    data: list[EmbeddingObject]
    usage: Usage
    id: str
    created: int
    fingerprint: str = Field(
        description="The model's vector-space fingerprint (also the x-embedding-fingerprint "
        "header): vectors with different fingerprints must not be mixed."
    )


class CohereEmbedResponse(BaseModel):
    id: str
    response_type: Literal["embeddings_floats", "embeddings_by_type"]
    embeddings: list[list[float]] | dict[str, list[list[float]] | list[list[int]] | list[str]]
    texts: list[str]
    meta: dict[str, Any] = Field(
        description="{'api_version': {'version'}, 'billed_units': {'input_tokens'}}"
    )


class RerankResult(BaseModel):
    index: int
    relevance_score: float
    document: str | dict[str, Any] | None = Field(
        None,
        description="return_documents: on /v1 and /v2, a string document as {'text': ...}; "
        "on /rerank (Infinity's), as sent. An object document as sent.",
    )


class RerankResponse(BaseModel):
    object: Literal["rerank"] = "rerank"
    model: str
    results: list[RerankResult]
    data: list[RerankResult] = Field(description="The same results, under Voyage's name.")
    usage: Usage
    id: str
    created: int


class RerankV2Response(BaseModel):
    id: str
    model: str
    results: list[RerankResult]
    meta: dict[str, Any]
    usage: Usage


class Classification(BaseModel):
    index: int
    object: Literal["classification"] = "classification"
    label: str = Field(description="The label of the highest probability.")
    probs: list[float] = Field(description="Each label's probability (logit with raw_scores).")
    num_classes: int


class ClassifyResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    data: list[Classification]
    usage: Usage
    id: str
    created: int


class LabelScore(BaseModel):
    label: str
    score: float


class InfinityClassifyResponse(BaseModel):
    object: Literal["classify"] = "classify"
    model: str
    data: list[list[LabelScore]] = Field(description="Per input, each label, highest first.")
    usage: Usage
    id: str
    created: int


class Score(BaseModel):
    index: int
    object: Literal["score"] = "score"
    score: float


class ScoreResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    data: list[Score]
    usage: Usage
    id: str
    created: int


class TokenizedInput(BaseModel):
    object: Literal["tokens"] = "tokens"
    index: int
    ids: list[int]
    tokens: list[str]
    offsets: list[list[int]] = Field(
        description="[start, end) character offsets of each token in the input; [0, 0] for "
        "special tokens."
    )
    special: list[bool] = Field(description="Whether each token is a special token.")
    count: int


class TokenizeResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    data: list[TokenizedInput]


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    owned_by: str = "infinity"
    created: int
    capabilities: list[str]
    backend: str
    dtype: str | None = None
    revision: str | None = Field(
        None, description="The Hub commit, or sha256 of the weight files' content (a folder)."
    )
    max_input_tokens: int | None = None
    dimensions: int | None = None
    pooling: str | None = None
    normalized: bool | None = None
    prompts: list[str] | None = None
    default_prompt_name: str | None = None
    adapters: list[str] | None = Field(
        None,
        description="Task adapters (LoRA): the prompt_name (or task) of the same name, '.' "
        "and '-' read as '_', applies one with its prompt.",
    )
    input_types: dict[str, str | None] | None = Field(
        None, description="Each input_type and the prompt it applies (null: none, text as is)."
    )
    fingerprint: str | None = Field(
        None,
        description="Embedders: 16 hex digits over weights, pooling, normalisation, max "
        "length, default prompt and dtype class.",
    )
    similarity: str | None = Field(
        None, description="Multi-vector models: maxsim or meanmaxsim (rerank and score)."
    )
    classes: dict[str, Any] | None = Field(
        None,
        description="Classifiers: their labels in output order, whether they read pairs of "
        "texts, and whether the labels are independent (multi_label: a sigmoid each).",
    )
    stats: dict[str, Any] = {}


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class TeiErrorResponse(BaseModel):
    """TEI's error body (its routes): error_type Validation, Empty, Backend, Overloaded or
    Unhealthy."""

    error: str
    error_type: str
