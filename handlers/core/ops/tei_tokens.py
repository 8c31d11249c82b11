"""TEI's POST /tokenize and /decode (the model's tokenizer, TEI's shapes: byte offsets, bare
lists) and GET /info (the model a TEI route answers for, and the server's limits)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, RootModel

from handlers.core import tei
from handlers.core.operations import Operation
from handlers.core.parsing import parse_body
from handlers.core.schemas import RequestBody
from handlers.errors import ErrorKind, ServiceError
from handlers.model_info import ModelInfo

if TYPE_CHECKING:
    from handlers.core.dispatch import Core

__all__ = ["DECODE", "INFO", "TOKENIZE"]

ANY = ("embed", "sparse_embed", "multi_vector_embed", "rerank", "classify")  # every model


class TokenizeRequest(RequestBody):
    model: str | None = Field(None, description="Not TEI's: a served model (default: the first).")
    inputs: str | list[str]
    add_special_tokens: bool = True
    prompt_name: str | None = Field(None, description="A prompt of the model, prefixed.")


class Token(BaseModel):
    id: int
    text: str
    special: bool
    start: int | None = Field(description="Byte offset in the input (with its prompt).")
    stop: int | None


class TokenizeReply(RootModel[list[list[Token]]]):
    """Per input its tokens."""


def _no_tokenizer(model: str) -> ServiceError:
    return ServiceError(
        ErrorKind.INVALID,
        f"Model '{model}' has no fast tokenizer: this route is not available for it.",
        param="model",
        code="model_capability",
    )


def _tokens(text: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    """One input's tokens as TEI gives them: a special token's own string and no offsets,
    every other token's slice of the input and its byte offsets."""
    out = []
    for id_, token, (start, stop), special in zip(
        data["ids"], data["tokens"], data["offsets"], data["special"], strict=True
    ):
        if special:
            out.append({"id": id_, "text": token, "special": True, "start": None, "stop": None})
            continue
        begin, end = len(text[:start].encode()), len(text[:stop].encode())
        out.append(
            {"id": id_, "text": text[start:stop], "special": False, "start": begin, "stop": end}
        )
    return out


@tei.speaks_tei
async def tokenize(core: Core, body: Any) -> list[list[dict[str, Any]]]:
    req = parse_body(TokenizeRequest, body)
    texts = [req.inputs] if isinstance(req.inputs, str) else list(req.inputs)
    if not texts or not all(texts):
        raise tei.empty()
    core.check_size("input", len(texts), texts)
    info = core.first(req.model, *ANY)
    if req.prompt_name is not None:
        if req.prompt_name not in info.prompts:
            raise ServiceError(
                ErrorKind.INVALID,
                f"Model '{info.id}' has no prompt {req.prompt_name!r}; its prompts: "
                f"{', '.join(info.prompts) or 'none'}.",
                param="prompt_name",
            )
        texts = [info.prompts[req.prompt_name] + text for text in texts]
    data = await core.backend.tokenize(info.id, texts, req.add_special_tokens)
    if data is None:
        raise _no_tokenizer(info.id)
    return [_tokens(text, found) for text, found in zip(texts, data, strict=True)]


class DecodeRequest(RequestBody):
    model: str | None = Field(None, description="Not TEI's: a served model (default: the first).")
    ids: list[tei.TokenId] | list[list[tei.TokenId]]
    skip_special_tokens: bool = True


class DecodeReply(RootModel[list[str]]):
    """Each id list as text."""


@tei.speaks_tei
async def decode(core: Core, body: Any) -> list[str]:
    req = parse_body(DecodeRequest, body)
    flat = not req.ids or isinstance(req.ids[0], int)
    rows: list[list[int]] = [req.ids] if flat else req.ids
    if not rows or any(not row for row in rows):
        raise tei.empty("ids")
    core.check_size("ids", len(rows), [])
    info = core.first(req.model, *ANY)
    texts = await core.backend.decode(info.id, rows, req.skip_special_tokens)
    if texts is None:
        raise _no_tokenizer(info.id)
    return texts


class InfoReply(BaseModel):
    model_id: str
    model_sha: str | None
    model_dtype: str | None
    served_model_name: str
    model_type: dict[str, Any] = Field(
        description="{'embedding': {'pooling'}}, {'classifier': {'id2label', 'label2id'}} "
        "or {'reranker': {...}}, as TEI's."
    )
    max_concurrent_requests: int
    max_input_length: int | None
    max_batch_tokens: int | None
    max_batch_requests: int | None
    max_client_batch_size: int
    auto_truncate: bool
    tokenization_workers: int
    version: str
    sha: str | None
    docker_label: str | None


def _model_type(info: ModelInfo) -> dict[str, Any]:
    if info.classes is not None:
        labels = dict(enumerate(info.classes.labels))
        return {
            "classifier": {
                "id2label": {str(i): label for i, label in labels.items()},
                "label2id": {label: i for i, label in labels.items()},
            }
        }
    if "rerank" in info.capabilities and info.similarity is None:
        return {"reranker": {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}}
    pooling = info.pooling or ("splade" if "embed" not in info.capabilities else None)
    return {"embedding": {"pooling": pooling}}


async def info(core: Core, body: Any) -> dict[str, Any]:
    model = next(iter(core.backend.models().values()))
    stats = core.backend.stats(model.id)
    try:
        ours = version("embedding-service")
    except PackageNotFoundError:
        ours = "0"
    return {
        "model_id": model.id,
        "model_sha": model.revision,
        "model_dtype": model.dtype,
        "served_model_name": model.id,
        "model_type": _model_type(model),
        "max_concurrent_requests": core.settings.infinity_queue_size,
        "max_input_length": model.max_input_tokens,
        "max_batch_tokens": stats.get("max_batch_tokens"),
        "max_batch_requests": stats.get("batch_size"),
        "max_client_batch_size": core.settings.max_client_batch_size,
        "auto_truncate": True,
        "tokenization_workers": 1,
        "version": ours,
        "sha": None,
        "docker_label": None,
    }


TOKENIZE = Operation(
    "/tokenize",
    "POST",
    tokenize,
    "TEI's /tokenize: each input's tokens with their text and byte offsets (never truncated).",
    TokenizeReply,
    TokenizeRequest,
    example={"inputs": "test"},
    errors="tei",
)
DECODE = Operation(
    "/decode",
    "POST",
    decode,
    "TEI's /decode: token ids as text.",
    DecodeReply,
    DecodeRequest,
    example={"ids": [[101, 2774, 102]]},
    errors="tei",
)
INFO = Operation(
    "/info",
    "GET",
    info,
    "TEI's /info: the model TEI's routes answer for by default, and the server's limits.",
    InfoReply,
    errors="tei",
)
