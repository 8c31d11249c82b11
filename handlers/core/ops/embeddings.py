"""POST /v1/embeddings (OpenAI's, with Cohere's, Voyage's and Jina's fields): vectors of texts,
images and audio clips, sparse encoders' {"indices", "values"} and multi-vector models' token
vectors; `embed` is the routine every embeddings dialect runs."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from handlers.core import outputs, sparse
from handlers.core.operations import Operation
from handlers.core.parsing import parse_body
from handlers.core.prompts import prompt_for
from handlers.core.replies import EmbeddingsResponse, reply_meta
from handlers.core.schemas import EmbeddingsRequest
from handlers.engine.seam import EmbedKey, Prepared
from handlers.errors import At, ErrorKind, ServiceError
from handlers.model_info import OUTPUTS, ModelInfo

if TYPE_CHECKING:
    from handlers.core.dispatch import Core

__all__ = ["EMBEDDINGS", "embed"]

DENSE = frozenset({"embed"})  # what the routes of dense vectors only read a model as
NEEDS = {"text": "embed", "image": "image_embed", "audio": "audio_embed"}  # by modality


async def embeddings(core: Core, body: Any) -> dict[str, Any]:
    req: EmbeddingsRequest = parse_body(EmbeddingsRequest, body, core.context)
    info, vectors, tokens = await embed(core, req, beyond_dense=True)
    wanted = outputs.chosen(req, info)
    field = "embedding" if len(wanted) == 1 else "embeddings"
    return {
        "object": "list",
        "model": req.model,
        "data": [
            {"object": "embedding", field: value, "index": i}
            for i, value in enumerate(outputs.data(vectors, wanted, req))
        ],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        **reply_meta(),
        "fingerprint": info.fingerprint,
    }


async def embed(
    core: Core, req: EmbeddingsRequest, beyond_dense: bool = False
) -> tuple[ModelInfo, list[Any], int]:
    """The model's vectors of a validated request, in input order, and its tokens. With
    `beyond_dense`, the outputs the request asks (outputs.chosen): a sparse encoder's
    SparseVectors, a multi-vector encoder's token vectors, a dict of each asked output per
    input for a model of several; without, dense vectors only (other models are refused as
    no embedder)."""
    kinds = _modalities(core, req)
    texts = [item for item, kind in zip(req.input, kinds, strict=True) if kind == "text"]
    core.check_size("input", len(req.input), texts)
    needed = {NEEDS[kind] for kind in kinds} or {"embed"}
    served = core.model(req.model)
    wanted = outputs.chosen(req, served if beyond_dense else replace(served, capabilities=DENSE))
    if "dense" not in wanted:
        needed.discard("embed")
    needed |= {OUTPUTS[name] for name in wanted if name != "dense"}  # dense: embed or image
    info = core.model(req.model, *sorted(needed))
    if req.dimensions is not None and info.dimensions and req.dimensions > info.dimensions:
        raise ServiceError(
            ErrorKind.INVALID,
            At(
                ("dimensions",),
                f"={req.dimensions} exceeds the model's embedding size {info.dimensions}.",
            ),
            param="dimensions",
        )
    prompt, adapter = prompt_for(req, info)
    if info.similarity is not None:  # a multi-vector encoder applies its task's prompt itself
        prompt = ""
    items: list[Any] = [
        prompt + item if kind == "text" else item
        for item, kind in zip(req.input, kinds, strict=True)
    ]
    if not items:
        return info, [], 0
    lengths = None
    if not req.truncate:
        texts_at = [
            (i, t) for i, (t, k) in enumerate(zip(items, kinds, strict=True)) if k == "text"
        ]
        prepared = await _check_lengths(core, info, texts_at)
        for (i, _), read in zip(texts_at, prepared.items, strict=True):
            items[i] = read
        counted = iter(prepared.counts)
        lengths = [next(counted) if kind == "text" else 1 for kind in kinds]  # a medium: 1
    task = sparse.task_of(req) if wanted[0] != "dense" else None  # single-output encoders
    several = wanted if len(info.outputs) > 1 else ()
    pooling = req.pool_factor or 1.0
    key = EmbedKey(req.truncation_direction, req.normalize, adapter, task, several, pooling)
    window = info.audio.max_seconds if info.audio is not None else None  # what is read of a clip
    async with core.backend.admit(req.model, len(items)) as ticket:
        for kind in ("image", "audio"):  # the images first, then the clips
            at = [(i, items[i]) for i, k in enumerate(kinds) if k == kind]
            if at:
                load = core.media.load(at) if kind == "image" else core.media.load_audio(at, window)
                for (i, _), decoded in zip(at, await load, strict=True):
                    items[i] = decoded
        if "audio" in kinds and not req.truncate:
            _check_clips(window, [(i, items[i]) for i, k in enumerate(kinds) if k == "audio"])
        vectors, tokens = await core.backend.embed(ticket, items, key, lengths)
    return info, vectors, tokens


def _modalities(core: Core, req: EmbeddingsRequest) -> list[str]:
    """Each input's modality: its object's, else the request's (auto: by its form, audio
    first: data:audio URIs, URLs of audio files and base64 of audio bytes)."""
    kinds = []
    for item, kind in zip(req.input, req.kinds, strict=True):
        if kind is None and req.modality == "auto":
            if core.media.looks_like_audio(item):
                kind = "audio"
            else:
                kind = "image" if core.media.looks_like_image(item) else "text"
        kinds.append(kind or req.modality)
    return kinds


def _check_clips(window: float | None, clips: list[tuple[int, Any]]) -> None:
    """truncate=false: a 413 naming the first clip longer than the model's audio window
    (`window` seconds; with truncate, the model reads the window's first seconds)."""
    for index, clip in clips:
        if window is not None and clip.seconds > window:
            raise ServiceError(
                ErrorKind.TOO_LARGE,
                At(
                    ("input", index),
                    f" lasts {clip.seconds:.2f} s; the model reads at most {window:g} s of a "
                    "clip and truncate is false.",
                ),
                param="input",
                code="input_too_long",
            )


async def _check_lengths(core: Core, info: ModelInfo, texts: list[tuple[int, str]]) -> Prepared:
    """truncate=false: a 413 naming the first text past the context length, counted
    untruncated with special tokens (by the engine, off the event loop), before any
    admission. Returns the texts as the model reads them (not tokenised again) and their
    counts, which the scheduler then batches by.

    Raises:
        ServiceError: TOO_LARGE for such a text; INVALID when the model cannot count.
    """
    limit = info.max_input_tokens
    if not texts:  # images and clips only: nothing to count
        return Prepared([], [])
    if limit is None:
        raise ServiceError(
            ErrorKind.INVALID,
            f"Model '{info.id}' does not report its context length: truncate=false is not "
            "available for it.",
            param="truncate",
        )
    prepared = await core.backend.count(info.id, [text for _, text in texts])
    for (index, _), count in zip(texts, prepared.counts, strict=True):
        if count > limit:
            raise ServiceError(
                ErrorKind.TOO_LARGE,
                At(
                    ("input", index),
                    f" has {count} tokens; the model's context length is {limit} "
                    "tokens and truncate is false.",
                ),
                param="input",
                code="input_too_long",
            )
    return prepared


EMBEDDINGS = Operation(
    "/v1/embeddings",
    "POST",
    embeddings,
    "Create embeddings for texts, images or audio (OpenAI-compatible; Cohere's, Voyage's and "
    "Jina's fields too).",
    EmbeddingsResponse,
    EmbeddingsRequest,
    "embed",
    aliases=("/embeddings",),
    also=("sparse_embed", "multi_vector_embed"),
    example={"input": ["The food was delicious.", "The waiter was friendly."]},
)
