"""Models loaded by Infinity, driven stage by stage; the only infinity_emb importer."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from handlers.engine import adapters, identity
from handlers.engine.adapters import AdapterSwitch
from handlers.engine.collate import Collator, SlowCollator, reproduces
from handlers.engine.seam import EmbedKey
from handlers.engine.stages import Runner
from handlers.engine.text_tokenizer import Counter, SlowTokenizer, TextTokenizer, Tokens
from handlers.settings import ModelSpec, Settings

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


def _token_counts(mask: Any) -> list[int]:
    return [int(n) for n in mask.sum(dim=1).tolist()]


def _tensors(features: dict[str, Any]) -> dict[str, Any]:
    """A collator's int64 arrays as the torch tensors a tokenizer call returns."""
    import torch

    return {name: torch.from_numpy(values) for name, values in features.items()}


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


class _RerankStages(_Stages):
    """Cross-encoders: (query, document) pairs reach the model as sent. Infinity's (and
    sentence-transformers 3.4's CrossEncoder) pre-process strips both texts, which drops
    what a model card's prompt template ends with (Qwen3-Reranker's `</think>\n\n`);
    the reference is the model's own tokenizer on the pair, as the cards compute it. With
    a collator, the pairs' Tokens (a window's are its document's token slice) are the
    model's inputs."""

    def __init__(self, model: Any, collator: Collator | None) -> None:
        super().__init__(model)
        self.collator = collator

    def prepare(self, inputs: list[Any], key: Hashable) -> tuple[Any, list[int]]:
        if self.collator is not None:
            features, counts = self.collator(inputs)
            return _tensors(features), counts
        queries, docs = zip(*inputs, strict=True)
        features = self.model.tokenizer(
            list(queries),
            list(docs),
            padding=True,
            truncation="longest_first",
            return_tensors="pt",
        )
        return features, _token_counts(features["attention_mask"])


class _EmbedStages(_Stages):
    """sentence-transformers embedders: the batch's EmbedKey picks the truncation side, the
    task adapter (where the model has them) and, with normalize false, a forward pass that
    skips the model's Normalize module (and Infinity's normalisation). With a collator (a
    Transformer first module, or Infinity's CTranslate2 wrapper of one, held to its
    preprocess() at load), the inputs' Tokens are collated; otherwise Infinity's
    pre-process tokenises the texts."""

    def __init__(
        self, model: Any, collator: Collator | None, switch: AdapterSwitch | None = None
    ) -> None:
        super().__init__(model)
        self.collator = collator
        self.switch = switch

    def prepare(self, inputs: list[Any], key: Hashable) -> tuple[Any, list[int]]:
        options = key if isinstance(key, EmbedKey) else EmbedKey()
        if self.collator is not None:
            features, tokens = self.collator(inputs, options.truncation_direction)
            return (_tensors(features), options), tokens
        self.model.tokenizer.truncation_side = options.truncation_direction
        features, tokens = super().prepare(inputs, key)
        return (features, options), tokens

    def forward(self, prepared: tuple[Any, EmbedKey]) -> tuple[Any, bool]:
        features, options = prepared
        if self.switch is not None:
            self.switch.use(options.adapter)
        if options.normalize:
            return self.model.encode_core(features), True
        import torch
        from sentence_transformers.sentence_transformer.modules import Normalize
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


# Image-text model types whose text tower is trained and documented on inputs padded to its
# full length (SigLIP reads the last position): their texts never depend on the batch.
FIXED_LENGTH_TEXT = ("siglip", "siglip2")
TEXT_INPUTS = ("input_ids", "attention_mask")  # the rest of a batch's features are images'


class _ImageTextStages(_Stages):
    """CLIP-like models: texts and images in one batch; images count no tokens.

    Texts are tokenised here, not by Infinity's pre-process (which truncates at
    `config.max_length`, transformers' generation default of 20 tokens): truncated at the
    text tower's context length from the side the key names, padded to the longest text
    (CLIP), or to the full length where the model card documents it (SigLIP: a text's
    vector then never depends on its batch), with the attention mask when the tokenizer
    gives one, as the card's `model(**processor(...))` does. Images go through the
    processor as the card calls it (for SigLIP2 that also gives patch masks and shapes), and
    the forward pass calls the model's get_text_features / get_image_features with what
    each got (Infinity's passes pixel values only). The key also picks whether the
    projections are normalised."""

    def __init__(
        self,
        model: Any,
        max_length: int,
        fixed_length: bool,
        collator: Collator | SlowCollator | None,
    ) -> None:
        super().__init__(model)
        self.max_length = max_length
        self.fixed_length = fixed_length
        self.collator = collator  # with one, texts come as Tokens

    def prepare(self, inputs: list[Any], key: Hashable) -> tuple[Any, list[int]]:
        options = key if isinstance(key, EmbedKey) else EmbedKey()
        is_image = [not isinstance(item, str | Tokens) for item in inputs]
        texts = [item for item, image in zip(inputs, is_image, strict=True) if not image]
        images = [item for item, image in zip(inputs, is_image, strict=True) if image]
        processor = self.model.processor
        features: dict[str, Any] = {}
        counts: list[int] = []
        if texts and self.collator is not None:
            collated, counts = self.collator(texts, options.truncation_direction)
            features |= _tensors({k: v for k, v in collated.items() if k in TEXT_INPUTS})
        elif texts:
            processor.tokenizer.truncation_side = options.truncation_direction
            encoded = processor.tokenizer(
                texts,
                padding="max_length" if self.fixed_length else True,
                truncation=True,
                max_length=self.max_length,
                return_attention_mask=True,
                return_tensors="pt",
            )
            features["input_ids"] = encoded["input_ids"]
            if "attention_mask" in processor.tokenizer.model_input_names:
                features["attention_mask"] = encoded["attention_mask"]
            counts = _token_counts(encoded["attention_mask"])
        if images:  # all the processor gives (SigLIP2: patch masks and shapes too)
            features |= processor(images=images, return_tensors="pt")
        model = self.model.model
        features = {
            name: value.to(model.device, model.dtype)
            if value.is_floating_point()
            else value.to(model.device)
            for name, value in features.items()
        }
        text_tokens = iter(counts)
        tokens = [0 if image else next(text_tokens) for image in is_image]
        return ((features, is_image), options.normalize), tokens

    def forward(self, prepared: tuple[Any, bool]) -> tuple[Any, bool]:
        """get_text_features on the texts' inputs, get_image_features on the images'."""
        import torch

        (features, is_image), normalize = prepared
        model = self.model.model
        texts = {name: value for name, value in features.items() if name in TEXT_INPUTS}
        images = {name: value for name, value in features.items() if name not in TEXT_INPUTS}
        with torch.no_grad():
            text_embeds = _projected(model.get_text_features(**texts)) if texts else None
            image_embeds = _projected(model.get_image_features(**images)) if images else None
        return (text_embeds, image_embeds, is_image), normalize

    def finish(self, output: tuple[Any, bool]) -> Any:
        out, normalize = output
        if normalize:
            return self.model.encode_post(out)
        texts, images, is_image = out
        texts = iter(texts.float().numpy() if texts is not None else ())
        images = iter(images.float().numpy() if images is not None else ())
        return [next(images if image else texts) for image in is_image]


def _projected(output: Any) -> Any:
    """The projected embeddings of get_text_features / get_image_features: transformers 5
    returns the tower's output with them as its `pooler_output` (4.x: the tensor itself)."""
    return getattr(output, "pooler_output", output)


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
    tokenizer: TextTokenizer | None, hf_tokenizer: Any, replicas: list, fixed: bool = False
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
            _ImageTextStages(r, length, fixed, c) for r, c in zip(replicas, collators, strict=True)
        ]
        capabilities = frozenset({"embed", "image_embed"})
        collates = all(collators)
        return Loaded(runners, capabilities, engine, tokenizer, dtype, slow, collates)
    if isinstance(first, BaseCrossEncoder):
        tokenizer = _tokenizer(head.tokenizer, _cross_encoder_limit(head))
        collators = _collators(tokenizer, head.tokenizer, replicas)
        runners = [_RerankStages(r, c) for r, c in zip(replicas, collators, strict=True)]
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
            _EmbedStages(r, c, s) for r, c, s in zip(replicas, collators, switches, strict=True)
        ]
        collates = all(collators)
        embeds = frozenset({"embed"})
        return Loaded(runners, embeds, engine, tokenizer, dtype, None, collates, names)
    if isinstance(first, BaseEmbedder):
        tokenizer = _tokenizer(head.tokenizer, _seq_limit(head))
        return Loaded(
            [_Stages(r) for r in replicas], frozenset({"embed"}), engine, tokenizer, dtype
        )
    raise RuntimeError(
        f"model {spec.served_id}: {type(first).__name__} models are not served here "
        "(embedders, rerankers and CLIP-like models are)"
    )
