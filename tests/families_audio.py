"""Tiny random audio-text models built at test time, saved by transformers as the real
checkpoints are: CLAP (laion/clap-htsat-*: RoBERTa text tower, HTSAT audio tower, plain or
fused) and PE-Audio (facebook/pe-a-*: ModernBERT text tower, DAC + transformer audio tower);
and a sentence-transformers 6 pipeline with an audio modality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.families_shared import _sentences
from tests.tiny_tokenizers import byte_bpe, wrap

__all__ = [
    "CLAP_SECONDS",
    "CLAP_TEXT_TOKENS",
    "build_clap",
    "build_pe_audio",
    "build_st_clap",
]

CLAP_SECONDS = 1  # the tiny CLAP's window (the real ones: 10 s)
CLAP_TEXT_TOKENS = 128  # its text tower's positions less RoBERTa's offset of 2


def build_clap(
    folder: Path, fused: bool = False, seconds: int = CLAP_SECONDS, **audio: Any
) -> Path:
    """ClapModel (HTSAT with 64 mel bins at 48 kHz; `fused`: the fusion variant, as
    laion/clap-htsat-fused) with its ClapProcessor. `seconds`: its window; `audio`:
    ClapAudioConfig's sizes in place of the tiny ones (bench.models' HTSAT-sized model)."""
    import torch
    from transformers import (
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapProcessor,
        RobertaTokenizer,
    )

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tokenizer = wrap(
        folder,
        byte_bpe(_sentences(), specials),
        RobertaTokenizer,
        "<s>:0 $A:0 </s>:0 | <s>:0 $A:0 </s>:0 </s>:0 $B:1 </s>:1",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        cls_token="<s>",
        sep_token="</s>",
        model_max_length=512,  # the real tokenizer's: the text tower's positions bound it
    )
    extractor = ClapFeatureExtractor(
        feature_size=64,
        sampling_rate=48_000,
        hop_length=480,
        max_length_s=seconds,
        fft_window_size=1024,
        truncation="fusion" if fused else "rand_trunc",
        padding="repeatpad",
        frequency_min=50,
        frequency_max=14_000,
    )
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": CLAP_TEXT_TOKENS + 2,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "type_vocab_size": 1,
    }
    tower = {
        "spec_size": 128,
        "num_mel_bins": 64,
        "window_size": 4,
        "patch_size": 4,
        "patch_stride": [4, 4],
        "patch_embeds_hidden_size": 16,
        "depths": [1, 1],
        "num_attention_heads": [2, 2],
        "hidden_size": 32,  # patch_embeds_hidden_size * 2 ** (len(depths) - 1)
        "enable_fusion": fused,
        "fusion_type": "aff_2d" if fused else None,
        **audio,
    }
    torch.manual_seed(0)
    config = ClapConfig(text_config=text, audio_config=tower, projection_dim=16)
    ClapModel(config).save_pretrained(folder)
    return folder


def build_pe_audio(folder: Path) -> Path:
    """PeAudioModel (ModernBERT text tower; a DAC of hop 8 at 48 kHz under a 2-layer audio
    transformer) with its PeAudioProcessor."""
    import torch
    from transformers import (
        PeAudioConfig,
        PeAudioFeatureExtractor,
        PeAudioModel,
        PeAudioProcessor,
        TokenizersBackend,
    )

    specials = {"unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "mask": "[MASK]"}
    tokenizer = wrap(
        folder,
        byte_bpe(_sentences(), list(specials.values())),
        TokenizersBackend,
        "[CLS]:0 $A:0 [SEP]:0 | [CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        **{f"{name}_token": token for name, token in specials.items()},
        model_input_names=["input_ids", "attention_mask"],
        model_max_length=128,
    )
    ratios = [2, 4]  # the DAC's hop: 8 samples a frame (the real one: 1920)
    extractor = PeAudioFeatureExtractor(sampling_rate=48_000, hop_length=8)
    PeAudioProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    text = {
        "model_type": "modernbert",
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 128,
        "global_attn_every_n_layers": 2,
        "local_attention": 16,
        "pad_token_id": tokenizer.pad_token_id,
        "cls_token_id": tokenizer.cls_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "bos_token_id": tokenizer.cls_token_id,
        "eos_token_id": tokenizer.sep_token_id,
    }
    dac = {"encoder_hidden_size": 4, "downsampling_ratios": ratios, "hidden_size": 16}
    audio = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 60_000,  # x 8 samples: a 10 s window at 48 kHz
        "dac_config": {**dac, "codebook_dim": 8},
        "initializer_range": 0.5,  # at 0.02 every clip of the tiny tower gets one vector
    }
    torch.manual_seed(0)
    PeAudioModel(PeAudioConfig(text_config=text, audio_config=audio)).save_pretrained(folder)
    return folder


def build_st_clap(folder: Path) -> Path:
    """A sentence-transformers 6 pipeline with an audio modality: a Transformer over a tiny
    CLAP (its get_text_features / get_audio_features) and Normalize, saved by the library."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Transformer

    clap = build_clap(folder / "clap")
    modules = [Transformer(str(clap), max_seq_length=CLAP_TEXT_TOKENS), Normalize()]
    SentenceTransformer(modules=modules, device="cpu").save(str(folder / "model"))
    return folder / "model"
