"""Fakes at the real seams: a deterministic backend and an image loader without network."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from handlers.engine.seam import Backend, Prepared, SparseVector, Ticket, Windows
from handlers.engine.text_tokenizer import Tokens, tokenize_data
from handlers.engine.windows import plan_windows
from handlers.model_info import Classes, ModelInfo
from tests.fake_media import FakeMedium


def fake_vector(text: str, dims: int = 8) -> NDArray[Any]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    vec = np.random.default_rng(seed).standard_normal(dims).astype(np.float32)
    return vec / np.linalg.norm(vec)


def fake_sparse(text: str) -> SparseVector:
    """A fake sparse encoder's output: each distinct word's length as its index, weighted
    by its count and length."""
    words = text.lower().split()
    ids = sorted({len(w) for w in words})
    weights = [sum(len(w) for w in words if len(w) == i) / 10 for i in ids]
    return SparseVector(ids, weights, [f"w{i}" for i in ids])


@dataclass
class FakeEncoding:
    ids: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    offsets: list[tuple[int, int]] = field(default_factory=list)
    word_ids: list[int | None] = field(default_factory=list)

    @property
    def special_tokens_mask(self) -> list[int]:
        return [int(w is None) for w in self.word_ids]


class FakeTokenizer:
    """One token per whitespace-separated word (id: its length), [CLS] ... [SEP] around."""

    max_length = 16
    specials = 2
    pair_specials = 3

    def encode(self, texts: list[str], add_special_tokens: bool = True) -> list[Any]:
        """FakeEncodings, in the shape of tokenizers' Encoding."""
        encodings = []
        for text in texts:
            out = FakeEncoding()
            words = [(m.group(), m.span()) for m in re.finditer(r"\S+", text)]
            for word, span in [("[CLS]", (0, 0))] * add_special_tokens + words:
                out.ids.append(len(word))
                out.tokens.append(word)
                out.offsets.append(span)
                out.word_ids.append(None if span == (0, 0) else len(out.word_ids))
            if add_special_tokens:
                out.ids.append(5)
                out.tokens.append("[SEP]")
                out.offsets.append((0, 0))
                out.word_ids.append(None)
            encodings.append(out)
        return encodings

    def tokens(self, texts: list[str]) -> list[Tokens]:
        return [Tokens(e, len(e.ids) + self.specials) for e in self.encode(texts, False)]

    def decode(self, ids: list[list[int]], skip_special_tokens: bool) -> list[str]:
        """Each id as a word of that many letters ("x" * id); 5 is [SEP], skipped."""
        return [
            " ".join("x" * i for i in row if not (skip_special_tokens and i == 5)) for row in ids
        ]

    def windows(self, tokens: Tokens, spans: list[range]) -> list[Tokens]:
        e = tokens.encoding
        fields = (e.ids, e.tokens, e.offsets, e.word_ids)
        return [
            Tokens(
                FakeEncoding(*(list(f[s.start : s.stop]) for f in fields)), len(s) + self.specials
            )
            for s in spans
        ]


def text_of(item: str | Tokens) -> str:
    """A text, or the words of FakeTokenizer's Tokens."""
    return item if isinstance(item, str) else " ".join(item.encoding.tokens)


class FakeBackend:
    """Embeds by hashing, reranks by word overlap, classifies by hashing (logits); records
    calls; can be told to fail."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.ready = True
        self.alive = True
        self.loaded = True
        self.admissions: list[int] = []
        self.releases: list[int] = []
        self.lengths: list[list[int] | None] = []  # what each embed/rerank handed on
        self.calls: list[tuple[str, Any]] = []
        self.keys: list[Any] = []
        self.tickets: list[Ticket] = []  # every admission's, in order
        self.fail_with = fail_with
        self.without_fast_tokenizer: set[str] = set()  # models tokenize answers None for
        self._models = {
            info.id: info
            for info in (
                ModelInfo(
                    "embedder",
                    frozenset({"embed"}),
                    "fake",
                    8,
                    1,
                    max_input_tokens=16,
                    prompts={"query": "query: ", "document": "passage: "},
                    fingerprint="0123456789abcdef",
                ),
                ModelInfo("reranker", frozenset({"rerank"}), "fake", None, 1),
                ModelInfo(  # every embedder has a fingerprint (engine.loading.describe)
                    "clip",
                    frozenset({"embed", "image_embed"}),
                    "fake",
                    8,
                    1,
                    fingerprint="fedcba9876543210",
                ),
                ModelInfo(
                    "splade",
                    frozenset({"sparse_embed"}),
                    "fake",
                    None,
                    1,
                    max_input_tokens=16,
                    prompts={"query": "", "document": ""},
                    fingerprint="00112233445566ff",
                ),
                ModelInfo(
                    "sentiment",
                    frozenset({"classify"}),
                    "fake",
                    None,
                    1,
                    classes=Classes(("negative", "positive")),
                ),
                ModelInfo(
                    "nli",
                    frozenset({"classify"}),
                    "fake",
                    None,
                    1,
                    classes=Classes(("contradiction", "entailment", "neutral"), pairs=True),
                ),
            )
        }

    def models(self) -> dict[str, ModelInfo]:
        return self._models if self.loaded else {}

    @property
    def schedulers(self) -> dict[str, Any]:
        return {}  # no scheduler: /metrics has no per-model series

    def stats(self, model: str) -> dict[str, Any]:
        return {"queue_absolute": 0}

    async def start(self) -> None:
        self.ready = True

    async def stop(self) -> None:
        self.ready = False

    def _maybe_fail(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    @contextlib.asynccontextmanager
    async def admit(self, model: str, items: int) -> AsyncIterator[Ticket]:
        self.admissions.append(items)
        ticket = Ticket(model, items)
        self.tickets.append(ticket)
        try:
            yield ticket
        finally:
            ticket.open = False
            self.releases.append(items)  # as the real seam releases: on return, error, cancel

    def close_admission(self) -> None:
        pass

    async def embed(
        self, ticket: Ticket, items: list[Any], key: Any = None, lengths: list[int] | None = None
    ) -> tuple[list[NDArray[Any]], int]:
        ticket.covers(len(items))
        self.calls.append(("embed", items))
        self.lengths.append(lengths)
        self.keys.append(key)
        self._maybe_fail()
        vectors: list[Any] = [
            fake_vector(f"{item.kind}:{item.ref}" if isinstance(item, FakeMedium) else item)
            for item in items
        ]
        if "sparse_embed" in self._models[ticket.model].capabilities:
            vectors = [fake_sparse(item) for item in items]
        return vectors, sum(len(item.split()) + 2 for item in items if isinstance(item, str))

    async def count(self, model: str, texts: list[str]) -> Prepared:
        self.calls.append(("count", texts))
        return Prepared(list(texts), [len(text.split()) + 2 for text in texts])

    async def windows(
        self,
        model: str,
        query: str,
        docs: list[str],
        max_tokens: int | None,
        max_chunks: int | None,
        instruction: str | None = None,
    ) -> Windows:
        """The engine's own window planner, on FakeTokenizer."""
        return plan_windows(FakeTokenizer(), query, docs, max_tokens, max_chunks)

    async def tokenize(
        self, model: str, texts: list[str], add_special_tokens: bool
    ) -> list[dict[str, Any]] | None:
        if model in self.without_fast_tokenizer:
            return None
        return tokenize_data(FakeTokenizer().encode(texts, add_special_tokens))

    async def decode(self, model: str, ids: list[list[int]], skip: bool) -> list[str] | None:
        return None if model in self.without_fast_tokenizer else FakeTokenizer().decode(ids, skip)

    async def rerank(
        self, ticket: Ticket, windows: Windows, instruction: str | None = None
    ) -> tuple[list[float], int]:
        ticket.covers(len(windows.items))
        question, texts = text_of(windows.query), [text_of(doc) for doc in windows.items]
        self.calls.append(("rerank", (question, texts)))
        self.lengths.append(windows.lengths)
        self._maybe_fail()
        words = set(question.lower().split())
        scores = [len(words & set(text.lower().split())) / (len(words) or 1) for text in texts]
        return scores, len(texts) * 3

    async def classify(self, ticket: Ticket, items: list[Any]) -> tuple[list[NDArray[Any]], int]:
        ticket.covers(len(items))
        self.calls.append(("classify", items))
        self._maybe_fail()
        labels = self._models[ticket.model].classes
        assert labels is not None
        logits = [3 * fake_vector(repr(item), len(labels.labels)) for item in items]
        return logits, 4 * len(items)


if TYPE_CHECKING:  # the type checker (make test) holds each fake to the seam it stands in for
    _backend: Backend = FakeBackend()
