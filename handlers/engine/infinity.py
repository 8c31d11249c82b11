"""The Infinity adapter: its loader (select_model) and the Loaded model it gives, with our
runners of its classes; the only infinity_emb importer."""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from typing import Any

from handlers.engine import adapters, identity
from handlers.engine.collate import Collator, SlowCollator, reproduces
from handlers.engine.infinity_runners import (
    FIXED_LENGTH_TEXT,
    EmbedStages,
    ImageTextStages,
    RerankStages,
    Stages,
)
from handlers.engine.seam import Planner
from handlers.engine.stages import Runner
from handlers.engine.text_tokenizer import Counter, SlowTokenizer, TextTokenizer
from handlers.model_info import AudioWindow, Classes
from handlers.model_specs import ModelSpec
from handlers.settings import Settings

__all__ = ["Loaded", "import_infinity", "load_infinity", "preload_infinity"]

log = logging.getLogger(__name__)

_import_lock = threading.Lock()


@dataclass(frozen=True)
class Loaded:
    """A loaded model: one runner per replica, what it can do, the engine it runs on, and
    a tokenizer of its own for /v1/tokenize and rerank windows (None: no fast tokenizer).
    `collates`: its runners build their features from the tokenizer's Tokens (each text
    tokenised once); otherwise they take texts and tokenise them themselves."""

    runners: list[Runner]
    capabilities: frozenset[str]
    backend: str
    tokenizer: TextTokenizer | None  # a private copy: /v1/tokenize, counts, windows
    dtype: str | None = None  # the precision the weights run in
    slow_tokenizer: SlowTokenizer | None = None  # where there is no fast tokenizer
    collates: bool = False
    adapters: tuple[str, ...] = ()  # its task adapters (engine.adapters), loaded on torch
    classes: Classes | None = None  # a classifier's labels (engine.classifier)
    similarity: str | None = None  # multi-vector encoders: maxsim or meanmaxsim
    planner: Planner | None = None  # plans its own rerank windows (engine.windows.TextWindows)
    audio: AudioWindow | None = None  # audio-text models (engine.audio): rate, window

    @property
    def counter(self) -> Counter | None:
        """What tokenises and counts a text as the model reads it (truncate=false, the
        scheduler's measuring step); None: the model cannot."""
        return self.tokenizer or self.slow_tokenizer

    @property
    def max_length(self) -> int | None:
        """Context length in tokens, special ones included (text)."""
        return self.counter.max_length if self.counter is not None else None


def import_infinity() -> Any:
    """Import infinity_emb without letting it replace the root logger's handlers.

    Its log_handler clears the root handlers and installs its own at INFO, which makes
    every server access line appear twice and costs about 30% of throughput; we put the
    host's logging back as it was. The lock makes a second caller wait for a preload.
    """
    with _import_lock:
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        import infinity_emb

        root.handlers[:] = handlers
        root.setLevel(level)
        return infinity_emb


@functools.cache
def preload_infinity() -> None:
    """Start importing Infinity (torch, transformers: most of a cold start) in a thread, so
    it overlaps the transport's own imports; loading joins it. Once per process."""
    threading.Thread(target=import_infinity, name="preload-infinity", daemon=True).start()


def _text_tower_length(replica: Any) -> int:
    """An image-text model's text context length: its text tower's position embeddings,
    capped by the tokenizer's declared limit when that is lower."""
    config = replica.model.config
    text_config = getattr(config, "text_config", None) or config
    length = int(text_config.max_position_embeddings)
    declared = getattr(replica.processor.tokenizer, "model_max_length", None)
    if isinstance(declared, int) and 0 < declared < length:
        length = declared
    return length


def _engine_args(infinity: Any, spec: ModelSpec, settings: Settings, engine: str) -> Any:
    """Every EngineArgs field from Settings: Infinity's INFINITY_* variables change nothing."""
    from infinity_emb.primitives import DeviceID

    return infinity.EngineArgs(
        model_name_or_path=spec.path,
        served_model_name=spec.served_id,
        batch_size=spec.batch_size,
        revision=spec.revision,
        trust_remote_code=settings.trust_remote_code,
        engine=engine,
        device=settings.device,
        device_id=DeviceID([]),
        dtype=spec.dtype,
        model_warmup=False,
        vector_disk_cache_path="",
        compile=False,
        bettertransformer=False,
        pooling_method="auto",
        lengths_via_tokenize=False,
        embedding_dtype="float32",
        onnx_disable_optimize=True,
        onnx_do_not_prefer_quantized=False,
    )


def _dtype(replica: Any) -> str | None:
    """The dtype of a torch model's first parameter (`float32`, `float16`, ...)."""
    import torch

    module = replica if isinstance(replica, torch.nn.Module) else getattr(replica, "model", None)
    if not isinstance(module, torch.nn.Module):
        return None
    first = next(module.parameters(), None)
    return None if first is None else str(first.dtype).removeprefix("torch.")


def _tokenizer(hf_tokenizer: Any, limit: int | None) -> TextTokenizer | None:
    """A copy of a transformers fast tokenizer, with the context length the model's
    pre-process truncates at: `limit`, else the tokenizer's own `model_max_length`."""
    if not getattr(hf_tokenizer, "is_fast", False):
        return None
    declared = hf_tokenizer.model_max_length
    return TextTokenizer(hf_tokenizer.backend_tokenizer, int(limit or declared))


def _collators(
    tokenizer: TextTokenizer | None, hf_tokenizer: Any, replicas: list[Any], fixed: bool = False
) -> list[Collator | None]:
    """One collator per replica (each prepare thread owns its own); None each where the
    model has no fast tokenizer or no pad token."""
    if tokenizer is None:
        return [None] * len(replicas)
    return [Collator.of(tokenizer, hf_tokenizer, fixed) for _ in replicas]


def _seq_limit(model: Any) -> int | None:
    """sentence-transformers' max_seq_length; None where the first module does not say
    (Infinity's CTranslate2 embedder replaces it), so the tokenizer's own limit applies."""
    try:
        limit: int | None = model.max_seq_length
    except AttributeError:
        return None
    return limit


def _cross_encoder_limit(model: Any) -> int:
    """The cross-encoder's pre-process truncates pairs at the tokenizer's model_max_length;
    a tokenizer that declares none is bounded by the position embeddings."""
    declared = model.tokenizer.model_max_length
    positions = getattr(model.model.config, "max_position_embeddings", None)
    return int(min(declared, positions)) if positions else int(declared)


def load_infinity(spec: ModelSpec, settings: Settings, engine: str) -> Loaded:
    """Load one model with Infinity's own loader (blocking; call it off the event loop).

    Raises:
        RuntimeError: the model is of a kind this service does not serve (a classifier).
    """
    infinity = import_infinity()
    from infinity_emb.inference.select_model import select_model
    from infinity_emb.transformer.abstract import BaseCrossEncoder, BaseEmbedder, BaseTIMM
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Transformer

    replicas, _, _ = select_model(_engine_args(infinity, spec, settings, engine))
    first = replicas[0]
    head: Any = first  # Infinity's classes declare few of their attributes
    heads: list[Any] = list(replicas)
    collators: list[Any]
    dtype = _dtype(first)
    if isinstance(first, BaseTIMM):
        length = _text_tower_length(first)
        fixed = getattr(head.model.config, "model_type", None) in FIXED_LENGTH_TEXT
        hf_tokenizer = head.processor.tokenizer
        tokenizer = _tokenizer(hf_tokenizer, length)
        slow = None if tokenizer else SlowTokenizer(hf_tokenizer, length)
        if slow is not None:  # each replica's own tokenizer, its prepare thread's
            collators = [SlowCollator(r.processor.tokenizer, slow, fixed) for r in heads]
        else:
            collators = _collators(tokenizer, hf_tokenizer, replicas, fixed)
        runners: list[Runner] = [
            ImageTextStages(r, length, fixed, c) for r, c in zip(replicas, collators, strict=True)
        ]
        capabilities = frozenset({"embed", "image_embed"})
        collates = all(collators)
        return Loaded(runners, capabilities, engine, tokenizer, dtype, slow, collates)
    if isinstance(first, BaseCrossEncoder):
        tokenizer = _tokenizer(head.tokenizer, _cross_encoder_limit(head))
        collators = _collators(tokenizer, head.tokenizer, replicas)
        runners = [RerankStages(r, c) for r, c in zip(replicas, collators, strict=True)]
        collates = all(collators)
        return Loaded(runners, frozenset({"rerank"}), engine, tokenizer, dtype, None, collates)
    if isinstance(first, SentenceTransformer):
        tokenizer = _tokenizer(first.tokenizer, _seq_limit(first))
        # sentence-transformers' Transformer module, or Infinity's CTranslate2 wrapper of it
        # (remote-code first modules keep their own pre-process)
        known = type(first[0]) is Transformer or engine == "ctranslate2"
        collators = _collators(tokenizer if known else None, first.tokenizer, replicas)
        if not all(reproduces(c, r) for c, r in zip(collators, replicas, strict=True)):
            log.warning(
                "model %s: its preprocess() differs from the collated features on a probe; "
                "its pre-process tokenises each batch",
                spec.served_id,
            )
            collators = [None] * len(replicas)
        folder, _ = identity.source_folder(spec.path, spec.revision)
        names = adapters.find(folder) if engine == "torch" else ()
        switches = [adapters.load(r, folder, names) if folder and names else None for r in replicas]
        runners = [
            EmbedStages(r, c, s) for r, c, s in zip(replicas, collators, switches, strict=True)
        ]
        collates = all(collators)
        embeds = frozenset({"embed"})
        return Loaded(runners, embeds, engine, tokenizer, dtype, None, collates, names)
    if isinstance(first, BaseEmbedder):
        tokenizer = _tokenizer(head.tokenizer, _seq_limit(head))
        return Loaded([Stages(r) for r in replicas], frozenset({"embed"}), engine, tokenizer, dtype)
    raise RuntimeError(
        f"model {spec.served_id}: {type(first).__name__} models are not served here "
        "(embedders, rerankers and CLIP-like models are)"
    )
