"""Multimodal sentence-transformers 6 pipelines (images as tokens of one encoder) run by the
library itself, as a scheduler Runner."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from handlers.engine import identity
from handlers.engine.infinity import Loaded, import_infinity
from handlers.engine.seam import EmbedKey
from handlers.engine.text_tokenizer import TextTokenizer, Tokens
from handlers.media.audio import Clip, resampled
from handlers.model_info import AudioWindow
from handlers.model_specs import ModelSpec
from handlers.settings import Settings

__all__ = [
    "SentenceTransformerStages",
    "is_multimodal_pipeline",
    "load",
    "open_model",
    "preprocess_texts",
    "text_tokenizer",
]

log = logging.getLogger(__name__)

# config.json keys of towers other than text: a model with one reads them as tokens of its
# encoder (EmbeddingGemma 2, ModernVBERT), which Infinity's image-text class cannot run.
MEDIA_CONFIGS = ("vision_config", "audio_config")


def is_multimodal_pipeline(path: str, revision: str | None) -> bool:
    """Whether the model at `path` (a folder or Hub id) is a sentence-transformers pipeline
    whose first module is a Transformer over a model with a vision or audio tower."""
    config = transformer_config(path, revision)
    return any(key in (config or {}) for key in MEDIA_CONFIGS)


def transformer_config(path: str, revision: str | None) -> dict[str, Any] | None:
    """The config.json of the model under a sentence-transformers pipeline's first module
    (a Transformer); None when `path` is no such pipeline."""
    listing = identity.model_json(path, "modules.json", revision)
    if not listing or not str(listing[0].get("type", "")).endswith(".Transformer"):
        return None
    folder = str(listing[0].get("path", "")).strip("/")
    config = identity.model_json(
        path, f"{folder}/config.json" if folder else "config.json", revision
    )
    return config if isinstance(config, dict) else None


def open_model(kind: str, spec: ModelSpec, settings: Settings) -> tuple[Any, Any, str]:
    """A sentence-transformers 6 model class named `kind` (SentenceTransformer, SparseEncoder)
    loaded from `spec` (blocking, in eval mode): the model, our copy of its text tokenizer
    (None: no fast one) and its dtype. The preload's import of transformers is waited for
    first: a module imported while another thread imports transformers can find it half
    imported ("cannot import name ...")."""
    import_infinity()
    import sentence_transformers

    device = None if settings.device == "auto" else settings.device
    model = getattr(sentence_transformers, kind)(
        spec.path,
        device=device,
        trust_remote_code=settings.trust_remote_code,
        revision=spec.revision,
    ).eval()
    hf_tokenizer = text_tokenizer(model)
    tokenizer = None
    if getattr(hf_tokenizer, "is_fast", False):
        limit = model.max_seq_length or hf_tokenizer.model_max_length
        tokenizer = TextTokenizer(hf_tokenizer.backend_tokenizer, int(limit))
    return model, tokenizer, str(next(model.parameters()).dtype).removeprefix("torch.")


def load(spec: ModelSpec, settings: Settings) -> Loaded:
    """The pipeline of `spec` loaded by sentence-transformers 6 (blocking): it embeds texts
    and each media modality the model declares (images)."""
    model, tokenizer, dtype = open_model("SentenceTransformer", spec, settings)
    media = {f"{m}_embed" for m in ("image", "audio") if m in model.modalities}
    runner = SentenceTransformerStages(model)
    window = None
    if runner.audio is not None:
        rate, samples = runner.audio
        window = AudioWindow(rate, samples / rate if samples else settings.max_audio_seconds)
    capabilities = frozenset({"embed", *media})
    return Loaded([runner], capabilities, "torch", tokenizer, dtype, audio=window)


class SentenceTransformerStages:
    """A sentence-transformers 6 model as a scheduler Runner: the batch split by modality
    (a mixed batch is not what `encode` computes), each part through the model's own
    `preprocess` and modules; the Normalize module is applied as the batch's EmbedKey says
    (normalize false: the output of the module before it). Texts count their tokens
    (the attention mask); images and clips none. A clip is handed to the model as its
    `{"array", "sampling_rate"}` at its audio processor's rate (sentence-transformers does
    not resample), cut to the processor's window where it has one. Owned by the
    scheduler's threads."""

    def __init__(self, model: Any) -> None:
        self.model = model
        # (sampling rate, window in samples or 0) of a model with an audio modality
        self.audio: tuple[int, int] | None = None
        if "audio" in model.modalities:
            extractor = model[0].processor.feature_extractor
            window = getattr(extractor, "nb_max_samples", None) or 0
            self.audio = int(extractor.sampling_rate), int(window)

    def prepare(self, inputs: list[Any], key: Hashable) -> tuple[Any, list[int]]:
        options = key if isinstance(key, EmbedKey) else EmbedKey()
        texts = [i for i, item in enumerate(inputs) if isinstance(item, str | Tokens)]
        clips = [i for i, item in enumerate(inputs) if isinstance(item, Clip)]
        images = [i for i, item in enumerate(inputs) if not isinstance(item, str | Tokens | Clip)]
        tokenizer = text_tokenizer(self.model)
        counts = [0] * len(inputs)
        parts = []
        if texts:
            read = [_plain(inputs[i]) for i in texts]
            features, found = preprocess_texts(
                self.model, tokenizer, read, options.truncation_direction
            )
            for index, count in zip(texts, found, strict=True):
                counts[index] = count
            parts.append((texts, features))
        if images:
            parts.append((images, self.model.preprocess([inputs[i] for i in images])))
        if clips:
            if self.audio is None:
                raise TypeError("audio clips for a model without an audio modality")
            rate, window = self.audio
            arrays = [resampled(inputs[i], rate)[: window or None] for i in clips]
            audio = [{"array": array, "sampling_rate": rate} for array in arrays]
            parts.append((clips, self.model.preprocess(audio)))
        return (parts, len(inputs), options.normalize), counts

    def forward(self, prepared: tuple[list[Any], int, bool]) -> tuple[list[Any], int, bool]:
        import torch
        from sentence_transformers.sentence_transformer.modules import Normalize
        from sentence_transformers.util import batch_to_device

        parts, size, normalize = prepared
        done = []
        with torch.no_grad():
            for indices, features in parts:
                features = batch_to_device(features, self.model.device)
                for module in self.model:
                    if normalize or not isinstance(module, Normalize):
                        features = module(features)
                done.append((indices, features["sentence_embedding"].float().cpu().numpy()))
        return done, size, normalize

    def finish(self, output: tuple[list[Any], int, bool]) -> list[Any]:
        done, size, _ = output
        vectors: list[Any] = [None] * size
        for indices, found in done:
            for index, vector in zip(indices, found, strict=True):
                vectors[index] = vector
        return vectors


def preprocess_texts(
    model: Any, tokenizer: Any, texts: list[str], side: str, **options: Any
) -> tuple[Any, list[int]]:
    """`texts` through the model's own `preprocess` (with `options`: prompt, task), the
    tokenizer cutting too-long ones from `side`: the features and each text's token count
    (its attention mask)."""
    before = tokenizer.truncation_side
    tokenizer.truncation_side = side
    try:
        features = model.preprocess(texts, **options)
    finally:
        tokenizer.truncation_side = before
    return features, [int(n) for n in features["attention_mask"].sum(dim=1).tolist()]


def _plain(item: Any) -> str:
    """A text as sent (the scheduler's measuring step may have made it Tokens: their text
    is not kept, so such models measure counts only)."""
    if isinstance(item, Tokens):
        raise TypeError("a multimodal pipeline takes texts, not Tokens")
    return str(item)


def text_tokenizer(model: Any) -> Any:
    """The model's text tokenizer (a processor's own, where it has one)."""
    tokenizer = model.tokenizer
    return getattr(tokenizer, "tokenizer", tokenizer)
