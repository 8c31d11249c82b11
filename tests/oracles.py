"""Independent oracles: what a model itself says, computed in the test with its own library,
each input alone (a batch of one, no padding): sentence-transformers 6's `encode` for
sentence-transformers pipelines, plain transformers + torch for the rest."""

from __future__ import annotations

import json
import math
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

TOLERANCE = 1e-4
MAX_TOKENS = 128  # the tiny models' max_seq_length: where the engines truncate


@cache
def _tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def usage_tokens(folder: Path, texts: list[str], query: str | None = None) -> int:
    """What `usage` must say: tokens by the model's own tokenizer, special tokens included,
    each input truncated at MAX_TOKENS. With `query`, each text is a rerank document counted
    together with the query as one pair. Images count no tokens: leave them out of `texts`."""
    if not texts:
        return 0
    first = [query] * len(texts) if query is not None else texts
    second = texts if query is not None else None
    ids = _tokenizer(folder)(first, second, truncation=True, max_length=MAX_TOKENS)["input_ids"]
    return sum(map(len, ids))


def rerank_scores(folder: Path, query: str, docs: list[str], raw_scores: bool) -> list[float]:
    """The reranker's logit for each (query, document) pair, one pair at a time; through a
    sigmoid unless `raw_scores` (what Infinity's cross-encoder reports)."""
    import torch

    tokenizer, model = _loaded(Path(folder))
    with torch.no_grad():
        logits = [
            model(**tokenizer(query, doc, truncation=True, return_tensors="pt")).logits[0, 0]
            for doc in docs
        ]
    return [x.item() if raw_scores else 1 / (1 + math.exp(-x.item())) for x in logits]


def assert_rerank_matches(
    folder: Path, request: dict[str, Any], results: list[dict[str, Any]], as_sent: bool = False
) -> None:
    """`results` of a rerank `request` agree with the oracle: each score matches the oracle's
    for the document at its `index`, the order is the oracle's, `top_n` cut, and `document`
    is that request document exactly when it was asked for: a string one as {"text": ...}
    (/v1 and /v2), or as sent (`as_sent`: /rerank, RunPod's native jobs)."""
    docs = request.get("documents", request.get("docs"))
    raw = request.get("raw_scores", False)
    expected = rerank_scores(folder, request["query"], docs, raw)
    assert all(b - a > 10 * TOLERANCE for a, b in pairwise(sorted(expected))), "oracle too flat"
    order = sorted(range(len(docs)), key=lambda i: expected[i], reverse=True)
    assert [r["index"] for r in results] == order[: request.get("top_n")], (results, expected)
    for result in results:
        assert abs(result["relevance_score"] - expected[result["index"]]) <= TOLERANCE
    with_docs = request.get("return_documents", request.get("return_docs", False))

    def returned(doc: Any) -> Any:
        return {"text": doc} if isinstance(doc, str) and not as_sent else doc

    assert [r.get("document") for r in results] == [
        returned(docs[i]) if with_docs else None for i in order[: request.get("top_n")]
    ]


# --- the model families of tests.families ---------------------------------------------


def _kind(folder: Path) -> str:
    if (folder / "modules.json").exists():
        return "embed"
    return "image-text" if "vision_config" in _json(folder / "config.json") else "rerank"


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


@cache
def _loaded(folder: Path) -> tuple[Any, Any]:
    """(tokenizer, or the processor of an image-text model; model) from `folder`."""
    import transformers as t

    kind = _kind(folder)
    model_cls = t.AutoModelForSequenceClassification if kind == "rerank" else t.AutoModel
    pre = t.AutoProcessor if kind == "image-text" else t.AutoTokenizer
    return pre.from_pretrained(folder), model_cls.from_pretrained(folder).eval()


def _modules(folder: Path) -> list[tuple[str, Path]]:
    """The sentence-transformers modules: (class name, folder) in order."""
    modules = _json(folder / "modules.json")
    return [(m["type"].rsplit(".", 1)[-1], folder / m["path"]) for m in modules]


def context_length(folder: Path) -> int:
    """Where the model truncates, read from `folder`: sentence-transformers' max_seq_length
    (else the smaller of max positions and the tokenizer's limit), the text tower's max
    positions of an image-text model, a reranker tokenizer's model_max_length."""
    folder = Path(folder)
    config = _json(folder / "config.json")
    kind = _kind(folder)
    if kind == "image-text":
        return config["text_config"]["max_position_embeddings"]
    if kind == "embed":
        return _sentence_transformer(folder).max_seq_length
    return min(_loaded(folder)[0].model_max_length, config["max_position_embeddings"])


@cache
def _sentence_transformer(folder: Path, adapter: str | None = None) -> Any:
    """The folder loaded by sentence-transformers, with the LoRA adapter of the subfolder
    `adapter` loaded and set as the jina-embeddings-v3 card does."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    if adapter is not None:
        model.load_adapter(str(folder), adapter_name=adapter, adapter_kwargs={"subfolder": adapter})
        model.set_adapter(adapter)
    return model


def embed_oracle(
    folder: Path, texts: list[str], prompt: str = "", adapter: str | None = None
) -> Any:
    """L2-normalised embeddings of a sentence-transformers folder, float32 (n, dim): the
    model's own library (sentence-transformers 6's `encode`), one text at a time, with
    `prompt` in front ("": none, whatever the model's default_prompt_name) and the LoRA
    adapter of the subfolder `adapter` applied."""
    import numpy as np

    model = _sentence_transformer(Path(folder), adapter)
    vectors = [
        model.encode([text], prompt=prompt, batch_size=1, normalize_embeddings=True)[0]
        for text in texts
    ]
    return np.array(vectors, dtype=np.float32)


def image_text_oracle(folder: Path, texts: list[str] | None = None, images: list | None = None):
    """L2-normalised CLIP / SigLIP embeddings, the texts' then the images' (PIL images), each
    through the model's processor as its card does (SigLIP pads to max_length); of a
    multimodal sentence-transformers pipeline (ModernVBERT), its own `encode`."""
    import numpy as np
    import torch

    folder = Path(folder)
    if (folder / "modules.json").exists():
        model = _sentence_transformer(folder)
        inputs = [*(texts or []), *(images or [])]
        vectors = [model.encode([x], batch_size=1, normalize_embeddings=True)[0] for x in inputs]
        return np.array(vectors, dtype=np.float32)
    processor, model = _loaded(folder)
    padding = "max_length" if model.config.model_type in ("siglip", "siglip2") else True
    max_length = context_length(folder)
    vectors = []
    with torch.no_grad():
        for text in texts or []:
            enc = processor(
                text=[text],
                padding=padding,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            vectors.append(model.get_text_features(**enc).pooler_output[0])
        for image in images or []:
            enc = processor(images=[image], return_tensors="pt")
            vectors.append(model.get_image_features(**enc).pooler_output[0])
    return np.array(
        [torch.nn.functional.normalize(v, dim=-1).numpy() for v in vectors], dtype=np.float32
    )


def token_count(folder: Path, texts: list[str], prompt: str = "", query: str | None = None) -> int:
    """Tokens by the model's own tokenizer, special tokens included, each input truncated at
    the context length: of what an embedder embeds (prompt prefixed), of a text by
    an image-text model's tokenizer (no padding), or with `query`, of each (query, text)
    pair of a reranker."""
    folder = Path(folder)
    kind = _kind(folder)
    if kind == "image-text":
        tokenizer = _loaded(folder)[0].tokenizer
    elif kind == "embed":  # as sentence-transformers 6 reads them: the prompt prefixed
        tokenizer = _sentence_transformer(folder).tokenizer
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a processor's own
        texts = [prompt + text for text in texts]
    else:
        tokenizer = _loaded(folder)[0]
    pairs = [(query, text) if query is not None else (text,) for text in texts]
    limit = context_length(folder)
    return sum(len(tokenizer(*p, truncation=True, max_length=limit)["input_ids"]) for p in pairs)
