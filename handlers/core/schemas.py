"""Request schemas (pydantic v2) of embeddings and tokenize, and what every request body shares
(rerank's is in handlers.core.rerank, Cohere's embed in handlers.core.cohere; the replies are in
handlers.core.replies).

Every rule about one request body lives here, as validators: types and bounds (400), and
rules across fields, which raise the ServiceError every transport shows as it is."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from handlers.core.input_list import input_as_list
from handlers.core.other_apis import input_objects, our_fields
from handlers.errors import ErrorKind, ServiceError

__all__ = [
    "EMBEDDING_TYPES",
    "INPUT_TYPES",
    "MODALITIES",
    "PositiveInt",
    "RequestBody",
    "EmbeddingsRequest",
    "TokenizeRequest",
]

MODALITIES = ("text", "image", "audio", "auto")
EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary")
# Cohere's and Voyage's input_type -> the prompt name it applies (when the model has it);
# Cohere's "image" applies none
INPUT_TYPES: dict[str, str | None] = {
    "search_query": "query",
    "query": "query",
    "search_document": "document",
    "document": "document",
    "classification": "classification",
    "clustering": "clustering",
    "image": None,
}


def _known_modality(value: Any) -> Any:
    if value not in MODALITIES:
        raise PydanticCustomError(
            "modality",
            "Invalid modality: {value}. Supported: text, image, audio, auto",
            {"value": repr(value)},
        )
    return value


def _integral(value: Any) -> Any:
    """JSON Schema's integer includes 1.0; strict pydantic would refuse it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


PositiveInt = Annotated[int, Field(gt=0), BeforeValidator(_integral)]

InputList = Annotated[
    list[str],
    BeforeValidator(input_as_list),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}},
            ],
            "description": "A string or a list of strings (texts, or images or audio "
            "clips for modality image/audio/auto). Order is preserved.",
        }
    ),
]
_ITEM = {
    "anyOf": [
        {"type": "string"},
        {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
            "additionalProperties": False,
        },
        *(
            {
                "type": "object",
                "properties": {medium: {"type": "string"}},
                "required": [medium],
                "additionalProperties": False,
            }
            for medium in ("image", "audio")
        ),
    ]
}
EmbeddingInput = Annotated[
    list[str],
    BeforeValidator(input_as_list),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": _ITEM},
            ],
            "description": "A string or a list: strings (texts, or images or audio clips for "
            "modality image/audio/auto), or Jina/vLLM objects {'text': ...}, {'image': URL, "
            "data URI or base64} and {'audio': ...}, each embedded by its own modality, mixed "
            "freely. Order is preserved.",
        }
    ),
]


class RequestBody(BaseModel):
    # Unknown fields are ignored, as OpenAI-compatible clients send extras. Types are
    # strict: `"8"` is not a number and `0` is not a boolean, as the schema says.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, strict=True)


class EmbeddingsRequest(RequestBody):
    """OpenAI's embeddings body, plus the fields of Cohere, Voyage and Jina that change the
    output, read under their own names (handlers.core.other_apis)."""

    model: str = Field(description="A served model id (see /v1/models).")
    input: EmbeddingInput
    modality: Annotated[
        str,
        BeforeValidator(_known_modality),
        WithJsonSchema(
            {
                "type": "string",
                "enum": list(MODALITIES),
                "default": "text",
                "description": "What each string item is: text, an image or an audio clip "
                "(URL, data URI or base64); auto: by its form.",
            }
        ),
    ] = "text"
    encoding_format: Literal["float", "base64"] = Field(
        "float",
        description="base64: the raw bytes of each vector (little-endian float32 for "
        "embedding_type float, as the OpenAI SDK expects; one byte per value otherwise).",
    )
    dimensions: PositiveInt | None = Field(
        None,
        description="Matryoshka: keep the first N dimensions and re-normalise (also read "
        "as output_dimension, Voyage's and Cohere's name).",
    )
    embedding_type: Literal[(*EMBEDDING_TYPES, "float16")] = Field(  # type: ignore[valid-type]
        "float",
        description="float16: half precision (base64: 2 bytes a value). int8: round(127 v) "
        "clipped to [-127, 127] of the normalised vector; uint8: int8 + 128; ubinary: "
        "numpy.packbits(v > 0), zero-padded to whole bytes; binary: ubinary - 128 as int8. "
        "After dimensions. Also Voyage's output_dtype and Cohere's embedding_types (one "
        "type); Jina's 'base64' is float with encoding_format base64.",
    )
    normalize: bool = Field(
        True,
        description="false: the pooling output before any normalisation (float only; "
        "quantised types always use the normalised vector). Also read as Jina's normalized.",
    )
    truncate: bool = Field(
        True,
        description="false: an input longer than the model's context length is a 413 "
        "instead of being cut. Also read as Voyage's truncation, and as Cohere's NONE "
        "(false), END (true) and START (true, truncation_direction left).",
    )
    truncation_direction: Literal["right", "left"] = Field(
        "right", description="Which end of a too-long input is cut."
    )
    prompt_name: str | None = Field(
        None,
        description="A prompt of the model (see /v1/models) prefixed to every text, and its "
        "task adapter of that name where it has one.",
    )
    input_type: Literal[tuple(INPUT_TYPES)] | None = Field(  # type: ignore[valid-type]
        None,
        description="Cohere/Voyage style: applies the model's query, document, "
        "classification or clustering prompt when it has one ('image': none). Not with "
        "prompt_name or task.",
    )
    task: str | None = Field(
        None,
        description="Jina style: the model's prompt and task adapter of this name (as "
        "prompt_name). Not with prompt_name or input_type.",
    )
    sparse_top_k: PositiveInt | None = Field(
        None, description="Sparse encoders: keep each input's k largest weights."
    )
    sparse_threshold: float | None = Field(
        None, ge=0, description="Sparse encoders: drop the weights below this value."
    )
    return_tokens: bool = Field(
        False, description="Sparse encoders: each dimension's vocabulary token too."
    )
    pool_factor: float | None = Field(
        None,
        ge=1,
        le=64,
        description="Multi-vector outputs: keep about 1/pool_factor of each input's token "
        "vectors (sentence-transformers' hierarchical token pooling). Default: all.",
    )
    outputs: list[Literal["dense", "sparse", "multi_vector"]] | None = Field(
        None,
        min_length=1,
        description="The outputs to give, of those the model gives (see outputs in "
        "/v1/models; a BGE-M3-style model gives all three from one forward pass): one "
        "output is each item's embedding, several its embeddings object. Default: the "
        "model's first output.",
    )
    user: str | None = Field(None, description="Accepted and ignored.")
    _kinds: list[str | None] = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _other_apis(cls, data: Any, handler: Any) -> EmbeddingsRequest:
        """Other APIs' field names onto ours; Jina input objects into strings and kinds."""
        kinds = None
        if isinstance(data, dict):
            data = our_fields(data)
            if isinstance(data.get("input"), list):
                data["input"], kinds = input_objects(data["input"])
        req: EmbeddingsRequest = handler(data)
        req._kinds = kinds or [None] * len(req.input)
        return req

    @model_validator(mode="after")
    def _across_fields(self) -> EmbeddingsRequest:
        chosen = [f for f in ("prompt_name", "input_type", "task") if getattr(self, f) is not None]
        if len(chosen) > 1:
            fields = " or ".join(chosen) + (", not both" if len(chosen) == 2 else ": one of them")
            raise ServiceError(ErrorKind.INVALID, f"Send {fields}.", param=chosen[0])
        return self

    @property
    def kinds(self) -> list[str | None]:
        """Each input's modality as its object names it ('text', 'image', 'audio'), or None (a
        string: the request's modality applies)."""
        return self._kinds


class TokenizeRequest(RequestBody):
    model: str = Field(description="A served model id (see /v1/models).")
    input: InputList
    add_special_tokens: bool = Field(
        True, description="Count the model's special tokens as embeddings' usage does."
    )
