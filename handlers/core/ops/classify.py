"""POST /v1/classify (vLLM's reply) and /classify (Infinity's): a sequence classifier's labels
and probabilities for texts, or pairs of texts where the model reads pairs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BeforeValidator, Field, WithJsonSchema

from handlers.core.operations import Operation
from handlers.core.parsing import parse_body
from handlers.core.replies import ClassifyResponse, InfinityClassifyResponse, reply_meta
from handlers.core.schemas import RequestBody
from handlers.errors import At, ErrorKind, ServiceError
from handlers.model_info import Classes

if TYPE_CHECKING:
    from handlers.core.dispatch import Core

__all__ = ["CLASSIFY", "CLASSIFY_INFINITY", "ClassifyRequest", "probabilities"]

Pair = Annotated[list[str], Field(min_length=2, max_length=2)]


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class ClassifyRequest(RequestBody):
    model: str | None = Field(
        None, description="A served classifier; may be left out when only one is served."
    )
    input: Annotated[
        list[str | Pair],
        BeforeValidator(_as_list),
        Field(min_length=1),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string"},
                    {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "anyOf": [
                                {"type": "string"},
                                {
                                    "type": "array",
                                    "items": {"type": "string"},
                                    "minItems": 2,
                                    "maxItems": 2,
                                },
                            ]
                        },
                    },
                ],
                "description": "A text, or a list of texts and [text, text_pair] pairs "
                "(pairs for models that read them: see 'classes' in /v1/models).",
            }
        ),
    ]
    raw_scores: bool = Field(
        False, description="The model's logits instead of probabilities (Infinity's field)."
    )


def probabilities(logits: NDArray[Any], classes: Classes, raw: bool) -> list[float]:
    """One input's scores per label: its logits (`raw`), a sigmoid each for multi-label
    models, else the softmax over the labels, as transformers' text-classification
    pipeline applies them."""
    values = np.asarray(logits, dtype=np.float64)
    if not raw and classes.multi_label:
        values = 1.0 / (1.0 + np.exp(-values))
    elif not raw:
        shifted = np.exp(values - values.max())
        values = shifted / shifted.sum()
    return [float(v) for v in values]


async def _classify(
    core: Core, body: Any
) -> tuple[ClassifyRequest, str, Classes, list[list[float]], int]:
    """Validate a classify body and run it: (request, model, its classes, each input's
    scores per label, tokens)."""
    req: ClassifyRequest = parse_body(ClassifyRequest, body)
    texts = [t for item in req.input for t in ([item] if isinstance(item, str) else item)]
    core.check_size("input", len(req.input), texts)
    model = req.model if req.model is not None else core.only("classify")
    classes = core.model(model, "classify").classes
    assert classes is not None  # every classifier has them (engine.loading.describe)
    items: list[Any] = []
    for index, item in enumerate(req.input):
        if isinstance(item, str):
            items.append(item)
        elif not classes.pairs:
            raise ServiceError(
                ErrorKind.INVALID,
                At(
                    ("input", index),
                    f" is a pair; model '{model}' classifies single texts (send a string).",
                ),
                param="input",
            )
        else:
            items.append((item[0], item[1]))
    async with core.backend.admit(model, len(items)) as ticket:
        logits, tokens = await core.backend.classify(ticket, items)
    scores = [probabilities(row, classes, req.raw_scores) for row in logits]
    return req, model, classes, scores, tokens


async def classify(core: Core, body: Any) -> dict[str, Any]:
    """vLLM's reply: per input its top label and every label's probability, in label order."""
    req, model, classes, scores, tokens = await _classify(core, body)
    data = [
        {
            "index": index,
            "object": "classification",
            "label": classes.labels[int(np.argmax(row))],
            "probs": row,
            "num_classes": len(classes.labels),
        }
        for index, row in enumerate(scores)
    ]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "model": model, "data": data, "usage": usage, **reply_meta()}


async def classify_infinity(core: Core, body: Any) -> dict[str, Any]:
    """Infinity's reply: per input each label with its score, highest first."""
    req, model, classes, scores, tokens = await _classify(core, body)
    data = [
        [
            {"label": classes.labels[i], "score": row[i]}
            for i in sorted(range(len(row)), key=row.__getitem__, reverse=True)
        ]
        for row in scores
    ]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "classify", "model": model, "data": data, "usage": usage, **reply_meta()}


EXAMPLE = {"input": ["The food was delicious.", "The waiter was rude."]}
CLASSIFY = Operation(
    "/v1/classify",
    "POST",
    classify,
    "Classify texts (or pairs of texts) with a sequence classifier (vLLM's reply: the top "
    "label and every label's probability).",
    ClassifyResponse,
    ClassifyRequest,
    "classify",
    example=EXAMPLE,
)
CLASSIFY_INFINITY = Operation(
    "/classify",
    "POST",
    classify_infinity,
    "Classify texts (or pairs of texts) with a sequence classifier (Infinity's reply: each "
    "label with its score, highest first).",
    InfinityClassifyResponse,
    ClassifyRequest,
    "classify",
    example=EXAMPLE,
)
