"""Our runners of Infinity's model classes: its embedder, cross-encoder and image-text
models' stages (encode_pre / encode_core / encode_post) as scheduler Runners."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from handlers.engine.adapters import AdapterSwitch
from handlers.engine.collate import Collator, SlowCollator
from handlers.engine.seam import EmbedKey
from handlers.engine.text_tokenizer import Tokens

__all__ = [
    "FIXED_LENGTH_TEXT",
    "EmbedStages",
    "ImageTextStages",
    "RerankStages",
    "Stages",
]


def _token_counts(mask: Any) -> list[int]:
    return [int(n) for n in mask.sum(dim=1).tolist()]


def _tensors(features: dict[str, Any]) -> dict[str, Any]:
    """A collator's int64 arrays as the torch tensors a tokenizer call returns."""
    import torch

    return {name: torch.from_numpy(values) for name, values in features.items()}


class Stages:
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


class RerankStages(Stages):
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


class EmbedStages(Stages):
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


class ImageTextStages(Stages):
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
