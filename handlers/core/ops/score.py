"""POST /v1/score (vLLM's): how well each text_2 matches its text_1, by a reranker's score, a
multi-vector model's MaxSim or the cosine of an embedder's vectors."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import BeforeValidator, Field, WithJsonSchema

from handlers.core.operations import Operation
from handlers.core.ops.embeddings import embed
from handlers.core.ops.rerank import late_interaction
from handlers.core.parsing import parse_body
from handlers.core.replies import ScoreResponse, reply_meta
from handlers.core.schemas import EmbeddingsRequest, RequestBody
from handlers.errors import ErrorKind, ServiceError
from handlers.model_info import ModelInfo

if TYPE_CHECKING:
    from handlers.core.dispatch import Core

__all__ = ["SCORE", "ScoreRequest"]


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Texts = Annotated[
    list[str],
    BeforeValidator(_as_list),
    Field(min_length=1),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
            ]
        }
    ),
]


class ScoreRequest(RequestBody):
    model: str = Field(description="A served reranker or embedding model (see /v1/models).")
    text_1: Texts = Field(description="A text, or a list: one per text_2, or one for all.")
    text_2: Texts = Field(description="A text, or a list of texts, each scored against text_1.")

    def pairs(self) -> list[tuple[str, str]]:
        """(text_1, text_2) of each score, in order: one text_1 against every text_2, or
        the two lists zipped.

        Raises:
            ServiceError: INVALID when the lists differ in length and text_1 is not one.
        """
        firsts, seconds = self.text_1, self.text_2
        if len(firsts) == 1:
            firsts = firsts * len(seconds)
        if len(firsts) != len(seconds):
            raise ServiceError(
                ErrorKind.INVALID,
                f"text_1 has {len(self.text_1)} texts and text_2 {len(self.text_2)}: send one "
                "text_1, or as many as text_2.",
                param="text_1",
            )
        return list(zip(firsts, seconds, strict=True))


def _by_first(pairs: list[tuple[str, str]]) -> dict[str, list[int]]:
    """The indices of the pairs of each distinct text_1, in order of first appearance."""
    owned: dict[str, list[int]] = {}
    for index, (first, _) in enumerate(pairs):
        owned.setdefault(first, []).append(index)
    return owned


async def _late_scores(
    core: Core, info: ModelInfo, pairs: list[tuple[str, str]]
) -> tuple[list[float], int]:
    """A multi-vector model's MaxSim of each pair (as /v1/rerank's relevance_score), and
    tokens."""
    scores = [0.0] * len(pairs)
    tokens = 0
    for query, owned in _by_first(pairs).items():
        found, used = await late_interaction(core, info, query, [pairs[i][1] for i in owned])
        for index, value in zip(owned, found, strict=True):
            scores[index] = value
        tokens += used
    return scores, tokens


async def _rerank_scores(
    core: Core, model: str, pairs: list[tuple[str, str]]
) -> tuple[list[float], int]:
    """A reranker's score of each pair (the sigmoid of its best window's logit, as
    /v1/rerank's relevance_score), and tokens."""
    owned = _by_first(pairs)
    plans = [
        await core.backend.windows(model, q, [pairs[i][1] for i in indices], None, None)
        for q, indices in owned.items()
    ]
    async with core.backend.admit(model, sum(len(p.items) for p in plans)) as ticket:
        runs = await asyncio.gather(*(core.backend.rerank(ticket, plan) for plan in plans))
    scores = [0.0] * len(pairs)
    for indices, plan, (logits, _) in zip(owned.values(), plans, runs, strict=True):
        best = plan.best(logits, len(indices))
        for index, logit in zip(indices, best, strict=True):
            scores[index] = float(1.0 / (1.0 + np.exp(-logit)))
    return scores, sum(tokens for _, tokens in runs)


async def _cosines(core: Core, model: str, pairs: list[tuple[str, str]]) -> tuple[list[float], int]:
    """The cosine of each pair's two vectors (each distinct text embedded once, as
    /v1/embeddings embeds it), and tokens."""
    texts = list(dict.fromkeys(t for pair in pairs for t in pair))
    req = EmbeddingsRequest.model_validate({"model": model, "input": texts})
    _, vectors, tokens = await embed(core, req)
    found = dict(zip(texts, vectors, strict=True))
    scores = []
    for first, second in pairs:
        a, b = (np.asarray(found[t], dtype=np.float64) for t in (first, second))
        scores.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))
    return scores, tokens


async def score(core: Core, body: Any) -> dict[str, Any]:
    req: ScoreRequest = parse_body(ScoreRequest, body)
    pairs = req.pairs()
    core.check_size("text_2", len(pairs), [*req.text_1, *req.text_2])
    info = core.model(req.model)
    if info.similarity is not None:
        scores, tokens = await _late_scores(core, info, pairs)
    elif "rerank" in info.capabilities:
        scores, tokens = await _rerank_scores(core, req.model, pairs)
    elif "embed" in info.capabilities:
        scores, tokens = await _cosines(core, req.model, pairs)
    else:
        raise ServiceError(
            ErrorKind.INVALID,
            f"Model '{req.model}' cannot score pairs: /v1/score takes a reranker or an "
            f"embedding model. Its capabilities: {', '.join(sorted(info.capabilities))}.",
            param="model",
            code="model_capability",
        )
    data = [{"index": i, "object": "score", "score": s} for i, s in enumerate(scores)]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "model": req.model, "data": data, "usage": usage, **reply_meta()}


SCORE = Operation(
    "/v1/score",
    "POST",
    score,
    "Score text pairs (vLLM's): a reranker's relevance score, or the cosine of an "
    "embedding model's vectors.",
    ScoreResponse,
    ScoreRequest,
    "rerank",
    aliases=("/score",),
    also=("embed",),
    example={
        "text_1": "What is the capital of France?",
        "text_2": ["Paris is the capital of France.", "Berlin is the capital of Germany."],
    },
)
