"""Request schemas (pydantic v2) of every operation; the replies are in handlers.core.replies.

Every rule about one request body lives here, as validators: types and bounds (400), and
rules across fields, which raise the ServiceError every transport shows as it is."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from handlers.core.rerank import document_texts
from handlers.errors import ErrorKind, ServiceError

__all__ = [
    "EMBEDDING_TYPES",
    "INPUT_TYPES",
    "MODALITIES",
    "EmbeddingsRequest",
    "RerankRequest",
    "TokenizeRequest",
]

MODALITIES = ("text", "image", "audio", "auto")
EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary")
# Cohere's and Voyage's input_type -> the prompt name it applies (when the model has it)
INPUT_TYPES = {
    "search_query": "query",
    "query": "query",
    "search_document": "document",
    "document": "document",
    "classification": "classification",
    "clustering": "clustering",
}
TOKEN_ARRAY_MESSAGE = (
    "token-id arrays are not supported as input: send the text itself "
    "(LangChain: set check_embedding_ctx_length=False)"
)


def _input_as_list(value: Any) -> Any:
    """A single string becomes a one-item list; token-id arrays are refused clearly."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and any(
        isinstance(item, int | list) and not isinstance(item, bool) for item in value
    ):
        raise PydanticCustomError("token_ids", TOKEN_ARRAY_MESSAGE)
    return value


def _known_modality(value: Any) -> Any:
    if value not in MODALITIES:
        raise PydanticCustomError(
            "modality",
            "Invalid modality: {value}. Supported: text, image, auto (audio planned)",
            {"value": repr(value)},
        )
    return value


def _integral(value: Any) -> Any:
    """JSON Schema's integer includes 1.0; strict pydantic would refuse it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


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

PositiveInt = Annotated[int, Field(gt=0), BeforeValidator(_integral)]

InputList = Annotated[
    list[str],
    BeforeValidator(_input_as_list),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}},
            ],
            "description": "A string or a list of strings (texts, or images for "
            "modality image/auto). Order is preserved.",
        }
    ),
]


class _Request(BaseModel):
    # Unknown fields are ignored, as OpenAI-compatible clients send extras. Types are
    # strict: `"8"` is not a number and `0` is not a boolean, as the schema says.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, strict=True)


class EmbeddingsRequest(_Request):
    model: str = Field(description="A served model id (see /v1/models).")
    input: InputList
    modality: Annotated[
        str,
        BeforeValidator(_known_modality),
        WithJsonSchema(
            {
                "type": "string",
                "enum": ["text", "image", "auto"],
                "default": "text",
                "description": "'audio' is planned and answers 501 Not Implemented.",
            }
        ),
    ] = "text"
    encoding_format: Literal["float", "base64"] = Field(
        "float",
        description="base64: the raw bytes of each vector (little-endian float32 for "
        "embedding_type float, as the OpenAI SDK expects; one byte per value otherwise).",
    )
    dimensions: PositiveInt | None = Field(
        None, description="Matryoshka: keep the first N dimensions and re-normalise."
    )
    embedding_type: Literal[EMBEDDING_TYPES] = Field(  # type: ignore[valid-type]
        "float",
        description="int8: round(127 v) clipped to [-127, 127] of the normalised vector; "
        "uint8: int8 + 128; ubinary: numpy.packbits(v > 0), zero-padded to a multiple of 8 "
        "dimensions; binary: ubinary - 128 as int8. Applied after dimensions.",
    )
    normalize: bool = Field(
        True,
        description="false: the pooling output before any normalisation (float only; "
        "quantised types always use the normalised vector).",
    )
    truncate: bool = Field(
        True,
        description="false: an input longer than the model's context length is a 413 "
        "instead of being cut.",
    )
    truncation_direction: Literal["right", "left"] = Field(
        "right", description="Which end of a too-long input is cut."
    )
    prompt_name: str | None = Field(
        None, description="A prompt of the model (see /v1/models) prefixed to every text."
    )
    input_type: Literal[tuple(INPUT_TYPES)] | None = Field(  # type: ignore[valid-type]
        None,
        description="Cohere/Voyage style: applies the model's query, document, "
        "classification or clustering prompt when it has one. Not with prompt_name.",
    )
    user: str | None = Field(None, description="Accepted and ignored.")

    @model_validator(mode="after")
    def _across_fields(self) -> EmbeddingsRequest:
        if self.modality == "audio":
            raise ServiceError(
                ErrorKind.NOT_IMPLEMENTED,
                "Audio modality is not yet implemented.",
                param="modality",
                code="not_implemented",
            )
        if self.prompt_name is not None and self.input_type is not None:
            raise ServiceError(
                ErrorKind.INVALID, "Send prompt_name or input_type, not both.", param="prompt_name"
            )
        return self


class RerankRequest(_Request):
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
        description="Include each result's document as sent: a string, or the whole object.",
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


class TokenizeRequest(_Request):
    model: str = Field(description="A served model id (see /v1/models).")
    input: InputList
    add_special_tokens: bool = Field(
        True, description="Count the model's special tokens as embeddings' usage does."
    )
