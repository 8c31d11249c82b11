"""Fakes at the real seams: a deterministic backend and an image loader without network."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from handlers.backend import ModelInfo, RerankHit
from handlers.media import looks_like_image


def fake_vector(text: str, dims: int = 8) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    vec = np.random.default_rng(seed).standard_normal(dims).astype(np.float32)
    return vec / np.linalg.norm(vec)


class FakeBackend:
    """Embeds by hashing, reranks by word overlap; records calls; can be told to fail."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.ready = True
        self.calls: list[tuple[str, Any]] = []
        self.fail_with = fail_with
        self._models = {
            info.id: info
            for info in (
                ModelInfo("embedder", frozenset({"embed"}), "fake", 8, 1),
                ModelInfo("reranker", frozenset({"rerank"}), "fake", None, 1),
                ModelInfo("clip", frozenset({"embed", "image_embed"}), "fake", 8, 1),
            )
        }

    def models(self) -> dict[str, ModelInfo]:
        return self._models

    def stats(self, model: str) -> dict[str, Any]:
        return {"queue_absolute": 0}

    async def start(self) -> None:
        self.ready = True

    async def stop(self) -> None:
        self.ready = False

    def _maybe_fail(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    async def embed(self, model: str, texts: list[str]) -> tuple[list[np.ndarray], int]:
        self.calls.append(("embed", texts))
        self._maybe_fail()
        return [fake_vector(t) for t in texts], sum(len(t.split()) + 2 for t in texts)

    async def image_embed(self, model: str, images: list[Any]) -> tuple[list[np.ndarray], int]:
        self.calls.append(("image_embed", images))
        self._maybe_fail()
        return [fake_vector(f"image:{img}") for img in images], len(images)

    async def rerank(
        self, model: str, query: str, docs: list[str], raw_scores: bool
    ) -> tuple[list[RerankHit], int]:
        self.calls.append(("rerank", (query, docs)))
        self._maybe_fail()
        words = set(query.lower().split())
        scores = [len(words & set(doc.lower().split())) / (len(words) or 1) for doc in docs]
        return [RerankHit(i, s) for i, s in enumerate(scores)], len(docs) * 3


class FakeImages:
    """Image loader stand-in: 'decodes' an item to a tag; items containing 'bad' fail."""

    looks_like_image = staticmethod(looks_like_image)

    async def load(self, items: list[tuple[int, str]]) -> list[Any]:
        from handlers.errors import ErrorKind, ServiceError

        for index, item in items:
            if "bad" in item:
                raise ServiceError(ErrorKind.INVALID, f"input[{index}]: bad image", param="input")
        return [item for _, item in items]

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass
