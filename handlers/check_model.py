"""`python -m handlers.check_model MODEL`: the service's answers against the model's own library."""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import sys
from typing import Any

import numpy as np
from numpy.typing import NDArray

from handlers.engine.infinity_runners import FIXED_LENGTH_TEXT
from handlers.engine.st_runner import is_multimodal_pipeline

__all__ = ["main", "probe_texts"]

COSINE_FLOOR = 0.9999  # embeddings: each vector against the reference
SCORE_TOLERANCE = 1e-3  # rerank logits: |difference| <= this x max(1, |reference|)
QUERY = "what is the capital of france?"


def probe_texts() -> list[str]:
    """Inputs of many lengths, one far past any context length, and surrounding whitespace."""
    sentence = "The quick brown fox jumps over the lazy dog near the river bank. "
    return [
        "hello",
        "Paris is the capital and largest city of France.",
        "  a text with surrounding whitespace \n\n",
        sentence * 4,
        sentence * 120,
    ]


def _images() -> list[str]:
    """Two generated pictures as data URIs (no network)."""
    from PIL import Image

    uris = []
    for size, level in (((64, 48), 200), ((40, 90), 30)):
        gradient = Image.linear_gradient("L").resize(size)
        picture = Image.merge("RGB", (gradient, Image.new("L", size, level), gradient.rotate(90)))
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        uris.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    return uris


async def _served(env: dict[str, str], texts: list[str], images: list[str]) -> dict[str, Any]:
    """What the service answers, through its own path (settings, engine, scheduler, core)."""
    from handlers.core.dispatch import Core
    from handlers.engine.backend import EngineBackend
    from handlers.media.fetcher import MediaFetcher
    from handlers.settings import load_settings

    settings = load_settings(env)
    core = Core(settings, EngineBackend(settings), MediaFetcher(settings))
    try:  # stopped also when a start fails part way: no model thread outlives the check
        await core.start()
        card = (await core.dispatch("/v1/models"))["data"][0]
        out: dict[str, Any] = {"card": card}
        model = card["id"]
        if "rerank" in card["capabilities"]:
            body = {"model": model, "query": QUERY, "documents": texts[:-1], "raw_scores": True}
            results = (await core.dispatch("/v1/rerank", body))["results"]
            by_index = sorted(results, key=lambda result: result["index"])
            out["scores"] = [result["relevance_score"] for result in by_index]
            return out
        items = {"text": texts, "image": images if "image_embed" in card["capabilities"] else []}
        for modality, inputs in items.items():
            if inputs:
                body = {"model": model, "input": inputs, "modality": modality}
                data = (await core.dispatch("/v1/embeddings", body))["data"]
                out[modality] = np.array([item["embedding"] for item in data])
        return out
    finally:
        await core.stop()


def _reference_embeddings(path: str, texts: list[str], trust: bool) -> NDArray[Any]:
    """sentence-transformers 6's own encode, one text at a time."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device="cpu", trust_remote_code=trust)
    return model.encode(texts, batch_size=1, normalize_embeddings=True)


def _reference_scores(path: str, texts: list[str], trust: bool) -> list[float]:
    """The reranker's logit for each (query, document) pair alone: sentence-transformers 6's
    CrossEncoder.predict without an activation."""
    import torch
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(path, device="cpu", trust_remote_code=trust)
    pairs = [(QUERY, doc) for doc in texts]
    scores = model.predict(pairs, batch_size=1, activation_fn=torch.nn.Identity())
    return [float(score) for score in scores]


def _picture(uri: str) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB")


def _reference_pipeline(
    path: str, texts: list[str], images: list[str], trust: bool
) -> dict[str, NDArray[Any]]:
    """A multimodal sentence-transformers pipeline (images as tokens of its encoder):
    sentence-transformers 6's own encode, one input at a time."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device="cpu", trust_remote_code=trust)

    def encode(inputs: list[Any]) -> NDArray[Any]:
        return np.stack(
            [model.encode([x], batch_size=1, normalize_embeddings=True)[0] for x in inputs]
        )

    return {"text": encode(texts), "image": encode([_picture(uri) for uri in images])}


def _reference_image_text(
    path: str, texts: list[str], images: list[str], trust: bool
) -> dict[str, NDArray[Any]]:
    """The model's processor as its card uses it (SigLIP pads to max_length), one input at a
    time, through get_text_features / get_image_features, L2-normalised."""
    import torch
    from transformers import AutoModel, AutoProcessor

    if is_multimodal_pipeline(path, None):
        return _reference_pipeline(path, texts, images, trust)

    load_processor: Any = AutoProcessor.from_pretrained  # untyped in transformers
    processor = load_processor(path, trust_remote_code=trust)
    model = AutoModel.from_pretrained(path, trust_remote_code=trust).eval()
    text_config = getattr(model.config, "text_config", model.config)
    fixed = model.config.model_type in FIXED_LENGTH_TEXT
    options = {
        "padding": "max_length" if fixed else True,
        "truncation": True,
        "max_length": text_config.max_position_embeddings,
    }
    vectors: dict[str, list[NDArray[Any]]] = {"text": [], "image": []}
    with torch.no_grad():
        for text in texts:
            features = processor(text=[text], return_tensors="pt", **options)
            vectors["text"].append(model.get_text_features(**features).pooler_output[0].numpy())
        for uri in images:
            features = processor(images=[_picture(uri)], return_tensors="pt")
            vectors["image"].append(model.get_image_features(**features).pooler_output[0].numpy())
    return {
        kind: np.stack(found) / np.linalg.norm(np.stack(found), axis=1, keepdims=True)
        for kind, found in vectors.items()
        if found
    }


def _report(label: str, served: NDArray[Any], reference: NDArray[Any]) -> bool:
    cosines = (served * reference).sum(1) / (
        np.linalg.norm(served, axis=1) * np.linalg.norm(reference, axis=1)
    )
    for index, cosine in enumerate(cosines):
        print(f"{label}[{index}] cosine {cosine:.6f}")
    return bool(cosines.min() >= COSINE_FLOOR)


def check(path: str, backend: str, trust: bool) -> bool:
    """Serve `path` with `backend` in-process, compare with the reference, print each input."""
    texts, images = probe_texts(), _images()
    env = {"MODEL_NAMES": path, "BACKEND": backend, "TRUST_REMOTE_CODE": str(trust).lower()}
    served = asyncio.run(_served(env, texts, images))
    card = served["card"]
    print(
        f"model {card['id']}: {', '.join(card['capabilities'])} on {card['backend']}, "
        f"max_input_tokens {card['max_input_tokens']}, pooling {card.get('pooling')}"
    )
    if "scores" in served:
        # Documents past the context length are scored by windows (README, "Rerank"),
        # which the reference does not do: the longest probe is left out.
        reference = _reference_scores(path, texts[:-1], trust)
        ok = True
        for index, (got, want) in enumerate(zip(served["scores"], reference, strict=True)):
            print(f"document[{index}] logit {got:.6f} reference {want:.6f}")
            ok &= abs(got - want) <= SCORE_TOLERANCE * max(1.0, abs(want))
        return ok
    if "image" in served:
        towers = _reference_image_text(path, texts, images, trust)
        return all([_report(kind, served[kind], towers[kind]) for kind in towers])
    return _report("text", served["text"], _reference_embeddings(path, texts, trust))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handlers.check_model", description=__doc__)
    parser.add_argument("model", help="a Hugging Face id or a local folder")
    parser.add_argument("--backend", default="torch", choices=("torch", "optimum", "ctranslate2"))
    parser.add_argument("--trust-remote-code", action="store_true")
    args = parser.parse_args(argv)
    ok = check(args.model, args.backend, args.trust_remote_code)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
