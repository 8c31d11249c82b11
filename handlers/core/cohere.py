"""Cohere's embed (/v1/embed, /v2/embed): its body as an embeddings request, its reply by type."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from numpy.typing import NDArray
from pydantic import BeforeValidator, Field, PrivateAttr, ValidationInfo, model_validator

from handlers.core.other_apis import cohere_inputs
from handlers.core.parsing import parse_body
from handlers.core.schemas import (
    EMBEDDING_TYPES,
    INPUT_TYPES,
    EmbeddingsRequest,
    PositiveInt,
    RequestBody,
)
from handlers.core.vectors import encode
from handlers.errors import ErrorKind, ServiceError

__all__ = ["COHERE_TYPES", "CohereEmbedRequest", "cohere_names", "embed_reply"]

COHERE_TYPES = (*EMBEDDING_TYPES, "base64")  # base64: float32 bytes, as a string


def cohere_names(error: ServiceError, items: str) -> ServiceError:
    """An /v1/embeddings error in the names of Cohere's embed body: `items` (texts, images
    or inputs) for input, output_dimension for dimensions (`input[3]` -> `texts[3]`), by the
    error's located parts (a text a client sent is never rewritten)."""
    return error.renamed({"input": items, "dimensions": "output_dimension"})


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class CohereEmbedRequest(RequestBody):
    """Cohere's embed body, v1 (`/v1/embed`) and v2 (`/v2/embed`): `texts`, `images` or
    `inputs`, and the embedding types wanted, all from one pass of the model."""

    model: str = Field(description="A served model id (see /v1/models).")
    texts: list[str] | None = None
    images: list[str] | None = Field(
        None, description="Image URLs, data URIs or base64 (a model with image_embed)."
    )
    inputs: list[dict[str, Any]] | None = Field(
        None,
        description="v2: each {'content': [one part]}, a part {'type': 'text', 'text': ...} or "
        "{'type': 'image_url', 'image_url': {'url': ...}} (one part per input).",
    )
    input_type: Literal[tuple(INPUT_TYPES)] | None = None  # type: ignore[valid-type]
    embedding_types: list[Literal[COHERE_TYPES]] | None = Field(  # type: ignore[valid-type]
        None,
        description="Default: v1 replies embeddings_floats (a list), v2 {'float': [...]}.",
    )
    output_dimension: PositiveInt | None = None
    truncate: Annotated[Literal["NONE", "START", "END"] | None, BeforeValidator(_upper)] = None
    max_tokens: Any = None  # refused unless null (handlers.core.other_apis.UNHONOURED)
    _embeddings: EmbeddingsRequest | None = PrivateAttr(None)
    _items_field: str = PrivateAttr("texts")

    @model_validator(mode="after")
    def _as_embeddings(self, info: ValidationInfo) -> CohereEmbedRequest:
        given = [f for f in ("texts", "images", "inputs") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ServiceError(
                ErrorKind.INVALID,
                "Send one of texts, images or inputs"
                + (f", not {' and '.join(given)}." if given else "."),
                param=given[-1] if given else "texts",
            )
        self._items_field = given[0]
        if self.texts is not None:
            items: list[Any] = self.texts
        elif self.images is not None:
            items = [{"image": image} for image in self.images]
        else:
            items = cohere_inputs(self.inputs or [])
        body = {
            "model": self.model,
            "input": items,
            "input_type": self.input_type,
            "output_dimension": self.output_dimension,
            "truncate": self.truncate,
            "max_tokens": self.max_tokens,
        }
        given_fields = {k: v for k, v in body.items() if v is not None}
        try:
            self._embeddings = parse_body(EmbeddingsRequest, given_fields, info.context)
        except ServiceError as error:  # named as the client sent it: texts[3], not input[3]
            raise cohere_names(error, self._items_field) from None
        return self

    @property
    def items_field(self) -> str:
        """The field the request's items came in: texts, images or inputs."""
        return self._items_field

    @property
    def embeddings(self) -> EmbeddingsRequest:
        """The same request as an /v1/embeddings one."""
        assert self._embeddings is not None
        return self._embeddings


def _rows(vectors: list[NDArray[Any]], kind: str, dimensions: int | None) -> list[Any]:
    """One embedding type's rows: `base64` is float32 bytes; the others as /v1/embeddings."""
    if not vectors:
        return []
    return encode(
        vectors,
        encoding="base64" if kind == "base64" else "float",
        dimensions=dimensions,
        normalize=True,
        embedding_type="float" if kind == "base64" else kind,
    )


def embed_reply(
    req: CohereEmbedRequest, vectors: list[NDArray[Any]], tokens: int, version: str, reply_id: str
) -> dict[str, Any]:
    """Without embedding_types, v1 replies `embeddings_floats` (a list of vectors) and v2
    `{"float": [...]}`; with them, one list per type. `texts` are the text inputs as sent."""
    inner = req.embeddings
    types = req.embedding_types or (None if version == "1" else ["float"])
    if types is None:
        embeddings: Any = _rows(vectors, "float", inner.dimensions)
    else:
        embeddings = {kind: _rows(vectors, kind, inner.dimensions) for kind in types}
    texts = [item for item, kind in zip(inner.input, inner.kinds, strict=True) if kind != "image"]
    return {
        "id": reply_id,
        "response_type": "embeddings_floats" if types is None else "embeddings_by_type",
        "embeddings": embeddings,
        "texts": texts,
        "meta": {"api_version": {"version": version}, "billed_units": {"input_tokens": tokens}},
    }
