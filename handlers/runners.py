"""Models loaded by Infinity, driven stage by stage; the only infinity_emb importer."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from .settings import ModelSpec, Settings
from .stages import EmbedKey, Runner
from .tokenize import TextTokenizer

__all__ = ["Loaded", "import_infinity", "load_infinity", "preload_infinity"]

log = logging.getLogger(__name__)

_import_lock = threading.Lock()


@dataclass(frozen=True)
class Loaded:
    """A loaded model: one runner per replica, what it can do, the engine it runs on, and
    a tokenizer of its own for /v1/tokenize and rerank windows (None: no fast tokenizer)."""

    runners: list[Runner]
    capabilities: frozenset[str]
    backend: str
    tokenizer: TextTokenizer | None  # a private copy: /v1/tokenize, counts, windows
    dtype: str | None = None  # the precision the weights run in

    @property
    def max_length(self) -> int | None:
        """Context length in tokens, special ones included (text)."""
        return self.tokenizer.max_length if self.tokenizer is not None else None


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


def _token_counts(mask: Any) -> list[int]:
    return [int(n) for n in mask.sum(dim=1).tolist()]


class _Stages:
    """Infinity's encode_pre / encode_core / encode_post as a scheduler Runner."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def prepare(self, inputs: list[Any], key: Hashable) -> tuple[Any, list[int]]:
        features = self.model.encode_pre(inputs)
        return features, _token_counts(features["attention_mask"])

    def forward(self, features: Any) -> Any:
        return self.model.encode_core(features)

    def finish(self, output: Any) -> Any:
        return self.model.encode_post(output)


class _EmbedStages(_Stages):
    """sentence-transformers embedders: the batch's EmbedKey picks the truncation side of the
    prepare thread's tokenizer and, with normalize false, a forward pass that skips the
    model's Normalize module (and Infinity's normalisation)."""

    def prepare(self, inputs: list[Any], key: Hashable) -> tuple[Any, list[int]]:
        options = key if isinstance(key, EmbedKey) else EmbedKey()
        self.model.tokenizer.truncation_side = options.truncation_direction
        features, tokens = super().prepare(inputs, key)
        return (features, options.normalize), tokens

    def forward(self, prepared: tuple[Any, bool]) -> tuple[Any, bool]:
        features, normalize = prepared
        if normalize:
            return self.model.encode_core(features), True
        import torch
        from sentence_transformers.models import Normalize
        from sentence_transformers.util import batch_to_device

        with torch.no_grad():
            features = batch_to_device(features, self.model.device)
            for module in self.model:
                if not isinstance(module, Normalize):
                    features = module(features)
        return features["sentence_embedding"].detach().cpu(), False

    def finish(self, output: tuple[Any, bool]) -> Any:
        pooled, normalize = output
        return self.model.encode_post(pooled) if normalize else pooled.float().numpy()


class _ClipStages(_Stages):
    """CLIP-like models: texts and images in one batch; images count no tokens. The key
    picks the text truncation side and whether the projections are normalised."""

    def prepare(self, inputs: list[Any], key: Hashable) -> tuple[Any, list[int]]:
        options = key if isinstance(key, EmbedKey) else EmbedKey()
        self.model.processor.tokenizer.truncation_side = options.truncation_direction
        features, is_image = self.model.encode_pre(inputs)
        text_tokens = iter(
            _token_counts(features["attention_mask"]) if "input_ids" in features else []
        )
        tokens = [0 if image else next(text_tokens) for image in is_image]
        return ((features, is_image), options.normalize), tokens

    def forward(self, prepared: tuple[Any, bool]) -> tuple[Any, bool]:
        features, normalize = prepared
        return self.model.encode_core(features), normalize

    def finish(self, output: tuple[Any, bool]) -> Any:
        out, normalize = output
        if normalize:
            return self.model.encode_post(out)
        texts, images, is_image = out
        texts = iter(texts.float().numpy() if texts is not None else ())
        images = iter(images.float().numpy() if images is not None else ())
        return [next(images if image else texts) for image in is_image]


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


def _tokenizer(hf_tokenizer: Any, limit: int | None, lower: bool = False) -> TextTokenizer | None:
    """A copy of a transformers fast tokenizer, with the context length the model's
    pre-process truncates at: `limit`, else the tokenizer's own `model_max_length`."""
    if not getattr(hf_tokenizer, "is_fast", False):
        return None
    declared = hf_tokenizer.model_max_length
    return TextTokenizer(hf_tokenizer.backend_tokenizer, int(limit or declared), lower)


def _seq_limit(model: Any) -> int | None:
    """sentence-transformers' max_seq_length; None where the first module does not say
    (Infinity's CTranslate2 embedder replaces it), so the tokenizer's own limit applies."""
    try:
        return model.max_seq_length
    except AttributeError:
        return None


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

    replicas, _, _ = select_model(_engine_args(infinity, spec, settings, engine))
    first = replicas[0]
    dtype = _dtype(first)
    if isinstance(first, BaseTIMM):
        tokenizer = _tokenizer(first.processor.tokenizer, getattr(first, "max_length", None))
        runners: list[Runner] = [_ClipStages(r) for r in replicas]
        capabilities = frozenset({"embed", "image_embed"})
        return Loaded(runners, capabilities, engine, tokenizer, dtype)
    if isinstance(first, BaseCrossEncoder):
        tokenizer = _tokenizer(first.tokenizer, _cross_encoder_limit(first))
        return Loaded(
            [_Stages(r) for r in replicas], frozenset({"rerank"}), engine, tokenizer, dtype
        )
    if isinstance(first, SentenceTransformer):
        lower = bool(getattr(first[0], "do_lower_case", False))
        tokenizer = _tokenizer(first.tokenizer, _seq_limit(first), lower)
        runners = [_EmbedStages(r) for r in replicas]
        return Loaded(runners, frozenset({"embed"}), engine, tokenizer, dtype)
    if isinstance(first, BaseEmbedder):
        tokenizer = _tokenizer(first.tokenizer, _seq_limit(first))
        return Loaded(
            [_Stages(r) for r in replicas], frozenset({"embed"}), engine, tokenizer, dtype
        )
    raise RuntimeError(
        f"model {spec.served_id}: {type(first).__name__} models are not served here "
        "(embedders, rerankers and CLIP-like models are)"
    )
