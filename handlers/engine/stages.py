"""The contract between a model's scheduler and its loaded model: stages and limits (batch
keys are the seam's EmbedKey)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Limits", "Runner"]


class Runner(Protocol):
    """A loaded model's three stages, called from the scheduler's threads only."""

    def prepare(self, inputs: list[Any], key: Hashable) -> tuple[Any, list[int]]:
        """Tokenise/pre-process a batch whose inputs share `key` (an EmbedKey for embedders,
        None when the request gave none): (features, tokens per input, special ones included)."""
        ...

    def forward(self, features: Any) -> Any:
        """The model's forward pass on prepared features."""
        ...

    def finish(self, output: Any) -> Sequence[Any]:
        """Post-process: one result per input, in order."""
        ...


@dataclass(frozen=True)
class Limits:
    """Per-model scheduling limits, from Settings."""

    batch_size: int
    max_batch_tokens: int  # MAX_BATCH_TOKENS: a batch's longest input x its size
    capacity: int  # INFINITY_QUEUE_SIZE
    max_waiting: int  # MAX_WAITING_ITEMS
    queue_timeout: float  # QUEUE_TIMEOUT_SECONDS
    stall_seconds: float  # WATCHDOG_SECONDS
    dead_factor: int = 5  # a stall this many times longer fails liveness
