"""The seam between the request core and the models: the Backend protocol and the types that
cross it (the core imports nothing else from the engine)."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from numpy.typing import NDArray

from handlers.model_info import ModelInfo

if TYPE_CHECKING:
    from handlers.engine.scheduler import Scheduler

__all__ = ["Backend", "EmbedKey", "Planner", "Prepared", "SparseVector", "Ticket", "Windows"]


@dataclass(frozen=True)
class EmbedKey:
    """The per-request options an embedder's batch shares (its scheduler key)."""

    truncation_direction: str = "right"  # which end a too-long input is cut from
    normalize: bool = True  # False: the pooling output, before any normalisation
    adapter: str | None = None  # the task adapter applied (engine.adapters); None: base weights
    task: str | None = None  # sparse encoders: "query" or "document" (their Router's route)
    # models of several outputs (engine.bge_m3): those to compute, each input's a dict of
    # them; (): the dense vector alone, as every other embedder gives
    outputs: tuple[str, ...] = ()
    pool_factor: float = 1.0  # multi-vector outputs: token pooling (engine.multi_vector.pooled)


@dataclass(frozen=True)
class SparseVector:
    """A sparse encoder's output for one input: its active dimensions (token ids, ascending),
    their weights, and the vocabulary token of each."""

    indices: list[int]
    values: list[float]
    tokens: list[str]


@dataclass
class Ticket:
    """Capacity admitted for one request: `items` inputs of `model`, held while the
    admission that issued it is open. The run call takes it and checks it covers its
    inputs, so no input runs unadmitted."""

    model: str
    items: int
    open: bool = True

    def covers(self, count: int) -> str:
        """The model, for a run of `count` inputs on this ticket.

        Raises:
            RuntimeError: the admission is closed, or admitted fewer inputs (a bug).
        """
        if not self.open or count > self.items:
            state = "an open" if self.open else "a closed"
            raise RuntimeError(
                f"model {self.model}: {count} inputs run on {state} ticket for {self.items}"
            )
        return self.model


@dataclass(frozen=True)
class Prepared:
    """Texts as the model reads them (opaque to the core: hand them to `embed`, and they are
    not tokenised again) and each one's tokens, untruncated, special tokens included."""

    items: list[Any]
    counts: list[int]


@dataclass(frozen=True)
class Windows:
    """What a reranker scores next to the query: the query and each window as the model
    reads them (opaque to the core), the document each window reads, and the tokens of
    each (query, window) pair, special tokens included (None: not counted)."""

    query: Any
    items: list[Any]
    owners: list[int]
    lengths: list[int] | None = None

    def best(self, scores: list[float], documents: int) -> list[float]:
        """Each document's score: its best window's."""
        best = [-math.inf] * documents
        for owner, score in zip(self.owners, scores, strict=True):
            best[owner] = max(best[owner], score)
        return best


# a model's own window planner: (query, documents, max_tokens, max_chunks, instruction)
Planner = Callable[[str, list[str], int | None, int | None, str | None], Windows]


class Backend(Protocol):
    """What the request core needs of the models. The engine owns tokens: it counts texts
    (`count`), plans rerank windows (`windows`) and tokenises (`tokenize`); the core keeps
    what these return and hands it back, never a tokenizer."""

    @property
    def ready(self) -> bool: ...

    @property
    def alive(self) -> bool: ...

    def models(self) -> dict[str, ModelInfo]: ...

    def stats(self, model: str) -> dict[str, Any]: ...

    @property
    def schedulers(self) -> Mapping[str, Scheduler]:
        """Each loaded model's scheduler by served id (a live view, for /metrics)."""
        ...

    async def count(self, model: str, texts: list[str]) -> Prepared:
        """The texts as the model reads them and their tokens, untruncated (off the event
        loop).

        Raises:
            RuntimeError: the model cannot count (its ModelInfo has no max_input_tokens).
        """
        ...

    async def windows(
        self,
        model: str,
        query: str,
        docs: list[str],
        max_tokens: int | None,
        max_chunks: int | None,
        instruction: str | None = None,
    ) -> Windows:
        """Each document split into windows that fit the reranker's context next to the
        query (engine/windows.py; off the event loop).

        Raises:
            ServiceError: TOO_LARGE when the query leaves no room for a document.
        """
        ...

    async def tokenize(
        self, model: str, texts: list[str], add_special_tokens: bool
    ) -> list[dict[str, Any]] | None:
        """Each text's ids, token strings, offsets and count, never truncated; None when the
        model has no fast tokenizer."""
        ...

    async def decode(
        self, model: str, ids: list[list[int]], skip_special_tokens: bool
    ) -> list[str] | None:
        """Each token id list as text; None when the model has no fast tokenizer."""
        ...

    def admit(self, model: str, items: int) -> AbstractAsyncContextManager[Ticket]:
        """Hold `items` of the model's capacity (waiting in line if needed) while inside;
        the ticket it gives is what embed and rerank take."""
        ...

    async def embed(
        self,
        ticket: Ticket,
        items: list[Any],
        key: Hashable = None,
        lengths: list[int] | None = None,
    ) -> tuple[list[NDArray[Any]], int]:
        """Vectors for texts (str, or `count`'s items) and, on image-text models, decoded
        images; and tokens. `key` (an EmbedKey) holds the request's truncation side,
        normalisation and adapter; `lengths` the items' tokens where the core counted them."""
        ...

    async def rerank(
        self, ticket: Ticket, windows: Windows, instruction: str | None = None
    ) -> tuple[list[float], int]:
        """Raw relevance logits of each (query, window) pair, in order, and tokens;
        `instruction`: an LLM reranker's prompt (rerank_instruction models only)."""
        ...

    async def classify(self, ticket: Ticket, items: list[Any]) -> tuple[list[NDArray[Any]], int]:
        """A classifier's logits for each input (a text, or a (text, text) pair), in order,
        and tokens."""
        ...

    def close_admission(self) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
