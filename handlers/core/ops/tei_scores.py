"""TEI's POST /predict, /similarity and /rerank (TEI's body; Infinity's keeps its reply on the
same path): classifier scores, cosines and rerank scores as bare lists, highest first where
TEI sorts (ties: the higher index first, as TEI)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field, RootModel

from handlers.core import tei
from handlers.core.operations import Operation
from handlers.core.ops.classify import _classify
from handlers.core.ops.embeddings import embed
from handlers.core.ops.rerank import EXAMPLE, _rank, rerank_as_sent
from handlers.core.parsing import parse_body
from handlers.core.replies import RerankResponse
from handlers.core.rerank import RerankRequest
from handlers.core.schemas import EmbeddingsRequest, RequestBody
from handlers.errors import ErrorKind, ServiceError

if TYPE_CHECKING:
    from handlers.core.dispatch import Core

__all__ = ["PREDICT", "RERANK_ROOT", "SIMILARITY", "predict", "rerank", "similarity"]


def _highest_first(scores: list[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: (scores[i], i), reverse=True)


class PredictRequest(RequestBody):
    model: str | None = Field(
        None, description="Not TEI's: a served classifier (default: the first)."
    )
    inputs: str | list[str] | list[list[str]] = Field(
        description="A text, [text] or [text, text_pair] (one input), or a list of such lists."
    )
    truncate: bool | None = Field(None, description="Accepted: classifiers truncate.")
    truncation_direction: tei.Direction = "Right"
    raw_scores: bool = Field(False, description="The logits instead of probabilities.")

    def items(self) -> tuple[list[str | list[str]], bool]:
        """The inputs (a text or a pair each) and whether the request was a batch.

        Raises:
            ServiceError: INVALID for a list of no texts or of more than two.
        """
        if isinstance(self.inputs, str):
            return [self.inputs], False
        if self.inputs and all(isinstance(i, str) for i in self.inputs):
            return [self._one(self.inputs)], False  # type: ignore[arg-type]
        if not self.inputs:
            raise tei.empty()
        return [self._one(i) for i in self.inputs], True  # type: ignore[arg-type]

    @staticmethod
    def _one(texts: list[str]) -> str | list[str]:
        if len(texts) not in (1, 2):
            raise ServiceError(
                ErrorKind.INVALID,
                f"inputs: an input is [text] or [text, text_pair], not {len(texts)} texts.",
                param="inputs",
            )
        return texts[0] if len(texts) == 1 else list(texts)


class Prediction(BaseModel):
    score: float
    label: str


class PredictReply(RootModel[list[Prediction] | list[list[Prediction]]]):
    """Each label with its score, highest first (a batch: a list per input)."""


@tei.speaks_tei
async def predict(core: Core, body: Any) -> list[Any]:
    req = parse_body(PredictRequest, body)
    items, batch = req.items()
    info = core.first(req.model, "classify")
    ours = {"model": info.id, "input": items, "raw_scores": req.raw_scores}
    _, _, classes, scores, _ = await _classify(core, ours)
    replies = [
        [{"score": row[i], "label": classes.labels[i]} for i in _highest_first(row)]
        for row in scores
    ]
    return replies if batch else replies[0]


class Sentences(RequestBody):
    source_sentence: str
    sentences: list[str]


class Parameters(RequestBody):
    truncate: bool | None = None
    truncation_direction: tei.Direction = "Right"
    prompt_name: str | None = None


class SimilarityRequest(RequestBody):
    model: str | None = Field(
        None, description="Not TEI's: a served embedder (default: the first)."
    )
    inputs: Sentences
    parameters: Parameters | None = None


class SimilarityReply(RootModel[list[float]]):
    """The cosine of source_sentence's vector and each sentence's."""


@tei.speaks_tei
async def similarity(core: Core, body: Any) -> list[float]:
    req = parse_body(SimilarityRequest, body)
    if not req.inputs.sentences:
        raise tei.empty("inputs.sentences")
    texts = [req.inputs.source_sentence, *req.inputs.sentences]
    if not all(texts):
        raise tei.empty()
    info = core.first(req.model, "embed")
    core.check_size("input", len(texts), texts)
    ours = tei.our_fields(req.parameters or Parameters(), info.id, texts)
    _, vectors, _ = await embed(core, parse_body(EmbeddingsRequest, ours, core.context))
    matrix = np.asarray(np.stack(vectors), dtype=np.float64)
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return [float(v) for v in unit[1:] @ unit[0]]


class TeiRerankRequest(RequestBody):
    model: str | None = Field(
        None, description="Not TEI's: a served reranker (default: the first)."
    )
    query: str
    texts: list[str]
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool | None = Field(
        None, description="Accepted: a long text is read in windows, its best one scores."
    )
    truncation_direction: tei.Direction = "Right"


class Ranked(BaseModel):
    index: int
    text: str | None = None
    score: float


class RerankReply(RootModel[list[Ranked]]):
    """Each text's index and score (and text with return_text), highest first."""


@tei.speaks_tei
async def rerank(core: Core, body: Any) -> list[dict[str, Any]]:
    """TEI's /rerank: called by the /rerank operation when the body is TEI's."""
    req = parse_body(TeiRerankRequest, body)
    if not req.texts:
        raise tei.empty("texts")
    info = core.first(req.model, "rerank")
    ours = {"model": info.id, "query": req.query, "documents": req.texts}
    ranked, _, scores, _ = await _rank(core, ours)
    if not req.raw_scores and not ranked.raw_scores:  # a multi-vector model's are raw
        scores = (1.0 / (1.0 + np.exp(-np.asarray(scores, dtype=np.float64)))).tolist()
    results = []
    for index in _highest_first(scores):
        result: dict[str, Any] = {"index": index, "score": float(scores[index])}
        if req.return_text:
            result["text"] = req.texts[index]
        results.append(result)
    return results


class EitherRerankRequest(RootModel[RerankRequest | TeiRerankRequest]):
    """Infinity's body (query, documents) or TEI's (query, texts)."""


class EitherRerankReply(RootModel[RerankResponse | RerankReply]):
    """Infinity's reply to its body, TEI's bare list to TEI's."""


async def rerank_root(core: Core, body: Any) -> Any:
    """/rerank: Infinity's reply to a body with documents (or docs), TEI's to one with texts.

    Raises:
        ServiceError: for a body with neither, TEI's 422 naming both shapes.
    """
    fields = body if isinstance(body, dict) else {}
    if {"documents", "docs"} & set(fields):
        return await rerank_as_sent(core, body)
    if "texts" in fields:
        return await rerank(core, body)
    raise ServiceError(
        ErrorKind.INVALID,
        "/rerank takes Infinity's body {'query', 'documents'} or TEI's {'query', 'texts'}; "
        "this body has neither documents nor texts.",
        param="texts",
        dialect="tei",
    )


PREDICT = Operation(
    "/predict",
    "POST",
    predict,
    "TEI's /predict: a classifier's labels with their scores, highest first, for a text, a "
    "pair, or a batch of them.",
    PredictReply,
    PredictRequest,
    "classify",
    example={"inputs": "I like you."},
    errors="tei",
)
SIMILARITY = Operation(
    "/similarity",
    "POST",
    similarity,
    "TEI's /similarity: the cosine of source_sentence's vector and each sentence's.",
    SimilarityReply,
    SimilarityRequest,
    "embed",
    example={
        "inputs": {
            "source_sentence": "What is Deep Learning?",
            "sentences": ["Deep learning is a kind of machine learning.", "Paris"],
        }
    },
    errors="tei",
)
RERANK_ROOT = Operation(
    "/rerank",
    "POST",
    rerank_root,
    "Score documents against a query, highest first: Infinity's body and reply (documents "
    "as sent), or TEI's body (texts) and its bare list.",
    EitherRerankReply,
    EitherRerankRequest,
    "rerank",
    example=EXAMPLE,
    errors="both",
)
