"""Audio-text models (CLAP, PE-Audio): loaded by transformers, texts through the text tower and
clips through the audio tower as each model's own processor and feature methods compute,
run as a scheduler Runner."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from handlers.engine import identity, st_runner
from handlers.engine.infinity import Loaded, import_infinity
from handlers.engine.seam import EmbedKey
from handlers.engine.text_tokenizer import TextTokenizer
from handlers.media.audio import Clip, resampled
from handlers.model_info import AudioWindow
from handlers.model_specs import ModelSpec
from handlers.settings import Settings

__all__ = ["AudioTextStages", "is_audio_model", "load"]

KINDS = ("clap", "pe_audio")  # config model_type
CAPABILITIES = frozenset({"embed", "audio_embed"})


def is_audio_model(path: str, revision: str | None) -> bool:
    """Whether the model is an audio-text checkpoint served here (its config names CLAP or
    PE-Audio), or a sentence-transformers pipeline over a model with an audio tower."""
    config = identity.model_json(path, "config.json", revision) or {}
    pipeline = st_runner.transformer_config(path, revision) or {}
    return config.get("model_type") in KINDS or "audio_config" in pipeline


def load(spec: ModelSpec, settings: Settings) -> Loaded:
    """A sentence-transformers pipeline by sentence-transformers 6 itself (its modules, its
    audio modality); otherwise the model of `spec` and its processor, loaded by
    transformers (blocking), float32 unless DTYPES names float16 or bfloat16."""
    if st_runner.is_multimodal_pipeline(spec.path, spec.revision):
        return st_runner.load(spec, settings)
    import_infinity()  # waits for the preload's import of transformers (half-imported else)
    import torch
    from transformers import AutoModel, AutoProcessor

    device = settings.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = spec.dtype if spec.dtype in ("float16", "bfloat16") else "float32"
    options = {"revision": spec.revision, "trust_remote_code": settings.trust_remote_code}
    processor = AutoProcessor.from_pretrained(spec.path, **options)  # type: ignore[no-untyped-call]
    model = AutoModel.from_pretrained(spec.path, dtype=getattr(torch, precision), **options)
    model = model.to(device).eval()
    stages = AudioTextStages(model, processor)
    hf_tokenizer = processor.tokenizer
    tokenizer = None
    if getattr(hf_tokenizer, "is_fast", False):
        tokenizer = TextTokenizer(hf_tokenizer.backend_tokenizer, stages.text_length)
    window = AudioWindow(stages.rate, stages.window / stages.rate)
    return Loaded([stages], CAPABILITIES, "torch", tokenizer, precision, audio=window)


class AudioTextStages:
    """CLAP or PE-Audio as a scheduler Runner: texts and clips in one batch (clips count no
    tokens). Texts are tokenised at the text tower's real context length (its positions;
    CLAP's RoBERTa offset taken off) from the side the key names, and embedded by
    get_text_features (CLAP) or the text-audio head over the first token (PE-Audio); clips
    are resampled to the processor's rate, cut to the model's window (the core refuses a
    longer one unless the request truncates) and embedded by get_audio_features (CLAP; a
    fused model's clips all marked longer, as one clip alone is, so a clip's vector never
    depends on its batch) or get_audio_embeds (PE-Audio); normalised as the key says."""

    def __init__(self, model: Any, processor: Any) -> None:
        self.model = model
        self.processor = processor
        self.extractor = processor.feature_extractor
        self.rate = int(self.extractor.sampling_rate)
        config = model.config
        self.clap = config.model_type == "clap"
        positions = int(config.text_config.max_position_embeddings)
        if self.clap:  # RoBERTa's positions start after the padding id
            positions -= int(config.text_config.pad_token_id) + 1
            self.window = int(self.extractor.nb_max_samples)
            self.fused = bool(getattr(config.audio_config, "enable_fusion", False))
        else:  # PE-Audio: as many frames as its audio positions (its DAC's hop each)
            hop = int(self.extractor.hop_length)
            self.window = int(config.audio_config.max_position_embeddings) * hop
            self.fused = False
        self.text_length = min(positions, int(processor.tokenizer.model_max_length))

    def prepare(self, inputs: list[Any], key: Hashable) -> tuple[Any, list[int]]:
        options = key if isinstance(key, EmbedKey) else EmbedKey()
        is_clip = [isinstance(item, Clip) for item in inputs]
        texts = [str(item) for item, clip in zip(inputs, is_clip, strict=True) if not clip]
        clips = [item for item in inputs if isinstance(item, Clip)]
        features: dict[str, Any] = {}
        counts: list[int] = []
        if texts:
            tokenizer = self.processor.tokenizer
            tokenizer.truncation_side = options.truncation_direction
            encoded = tokenizer(
                texts,
                padding=True,
                truncation=True,
                max_length=self.text_length,
                return_tensors="pt",
            )
            features["text"] = {k: encoded[k] for k in ("input_ids", "attention_mask")}
            counts = [int(n) for n in encoded["attention_mask"].sum(dim=1).tolist()]
        if clips:
            waves = [resampled(clip, self.rate)[: self.window] for clip in clips]
            audio = self.extractor(waves, sampling_rate=self.rate, return_tensors="pt")
            if self.clap:
                audio = {"input_features": audio["input_features"], "is_longer": audio["is_longer"]}
                if self.fused:
                    audio["is_longer"] = audio["is_longer"].new_ones(audio["is_longer"].shape)
            features["audio"] = dict(audio)
        text_tokens = iter(counts)
        tokens = [0 if clip else next(text_tokens) for clip in is_clip]
        return (features, is_clip, options.normalize), tokens

    def forward(self, prepared: tuple[dict[str, Any], list[bool], bool]) -> tuple[Any, ...]:
        import torch

        features, is_clip, normalize = prepared
        model = self.model
        moved = {
            part: {
                name: value.to(model.device, model.dtype)
                if value.is_floating_point()
                else value.to(model.device)
                for name, value in inputs.items()
            }
            for part, inputs in features.items()
        }
        with torch.inference_mode():
            texts = self._texts(moved["text"]).cpu() if "text" in moved else None
            audio = self._audio(moved["audio"]).cpu() if "audio" in moved else None
        return texts, audio, is_clip, normalize

    def _texts(self, inputs: dict[str, Any]) -> Any:
        if self.clap:
            return self.model.get_text_features(**inputs).pooler_output
        hidden = self.model.text_model(**inputs).last_hidden_state
        return self.model.text_audio_head(hidden[:, 0])

    def _audio(self, inputs: dict[str, Any]) -> Any:
        if self.clap:
            return self.model.get_audio_features(**inputs).pooler_output
        return self.model.get_audio_embeds(inputs["input_values"], inputs["padding_mask"])

    def finish(self, output: tuple[Any, ...]) -> list[Any]:
        import torch

        texts, audio, is_clip, normalize = output

        def rows(part: Any) -> Any:
            if part is None:
                return iter(())
            part = part.float()
            return iter(
                (torch.nn.functional.normalize(part, dim=-1) if normalize else part).numpy()
            )

        text_rows, clip_rows = rows(texts), rows(audio)
        return [next(clip_rows if clip else text_rows) for clip in is_clip]
