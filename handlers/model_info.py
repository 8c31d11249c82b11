"""What the core knows of one served model: its identity, capabilities and figures (a leaf)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["OUTPUTS", "AudioWindow", "Classes", "ModelInfo"]

# The embeddings outputs (a request's `outputs`) and the capability that gives each.
OUTPUTS = {"dense": "embed", "sparse": "sparse_embed", "multi_vector": "multi_vector_embed"}


@dataclass(frozen=True)
class Classes:
    """What a sequence classifier predicts: its labels in output order, whether it reads
    pairs of texts (a sentence-transformers CrossEncoder) and whether its labels are
    independent (multi-label: a sigmoid each) rather than exclusive (a softmax)."""

    labels: tuple[str, ...]
    pairs: bool = False
    multi_label: bool = False


@dataclass(frozen=True)
class AudioWindow:
    """What an audio model reads of a clip: its processor's sampling rate and the longest
    clip, in seconds, its audio tower takes."""

    sampling_rate: int
    max_seconds: float


@dataclass(frozen=True)
class ModelInfo:
    """What the core needs to know about one served model."""

    id: str
    capabilities: frozenset[str]
    backend: str
    dimensions: int | None
    created: int
    max_input_tokens: int | None = None  # context length, special tokens included
    dtype: str | None = None
    revision: str | None = None  # the Hub commit, or sha256 of the weight files' content
    pooling: str | None = None
    prompts: Mapping[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    adapters: tuple[str, ...] = ()  # task adapters a prompt (task) name picks
    fingerprint: str | None = None  # embedders: what decides their vector space
    classes: Classes | None = None  # classifiers: what they predict
    similarity: str | None = None  # multi-vector encoders: maxsim or meanmaxsim (rerank, score)
    audio: AudioWindow | None = None  # audio models: the clips they read

    @property
    def outputs(self) -> tuple[str, ...]:
        """The embeddings it gives (see OUTPUTS), its default (what a request without
        `outputs` gets) first; () for a model that embeds nothing."""
        return tuple(name for name, needs in OUTPUTS.items() if needs in self.capabilities)

    def adapter_for(self, task: str) -> str | None:
        """The task adapter a task (prompt) name picks: the one of that name, with '.' and
        '-' read as '_' (jina-embeddings-v3's task `retrieval.query` is its `retrieval_query`
        adapter); None when it has none of that name."""
        for name in (task, re.sub(r"[.-]", "_", task)):
            if name in self.adapters:
                return name
        return None
