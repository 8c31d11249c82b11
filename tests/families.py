"""Tiny random-weight models of the families people serve, built at test time with real
tokenizer formats (their oracles are in tests.oracles)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from tests import families_2026, tiny_models
from tests.tiny_models import SMALL, WORDS, _bert_tokenizer, _seed, _vocab, build_bert_embedder
from tests.tiny_tokenizers import byte_bpe, sentencepiece, spm_ids, unigram, wrap

QWEN3_EMBED_PROMPTS = {
    "query": "Instruct: Given a web search query, retrieve relevant passages that answer the query"
    "\nQuery:",
    "document": "",
}
GEMMA_PROMPTS = {"query": "task: search result | query: ", "document": "title: none | text: "}
NOMIC_PROMPTS = {"query": "search_query: ", "document": "search_document: "}
BERT_PROMPTS = {"query": "query : ", "document": "document : "}  # tiny_models.build_bert_embedder
QWEN3_RERANK_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    'and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
QWEN3_RERANK_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN3_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def qwen3_reranker_query(instruction: str, query: str) -> str:
    """The query text of a pair, as the Qwen3-Reranker-0.6B-seq-cls card formats it."""
    return f"{QWEN3_RERANK_PREFIX}<Instruct>: {instruction}\n<Query>: {query}\n"


def qwen3_reranker_document(doc: str) -> str:
    """The document text of a pair, as the Qwen3-Reranker-0.6B-seq-cls card formats it."""
    return f"<Document>: {doc}{QWEN3_RERANK_SUFFIX}"


# --- shared pieces -------------------------------------------------------------------------


@cache
def _sentences(n: int = 400) -> list[str]:
    """A fixed corpus of WORDS sentences (with some capitals, digits and punctuation) to
    train the tiny tokenizers on."""
    rng = random.Random(0)
    extra = ["Paris", "Hello", "World", "2024", "42", ",", ".", "?", "!", "é", "ü", "日本"]
    words = [*WORDS, *extra]
    sentences = [" ".join(rng.choices(words, k=rng.randint(3, 12))) for _ in range(n)]
    # the prompts and templates too (often), so they take few tokens as with real vocabularies
    templates = [
        qwen3_reranker_query("Given a web search query", "query") + qwen3_reranker_document("doc"),
        *QWEN3_EMBED_PROMPTS.values(),
        *GEMMA_PROMPTS.values(),
        *NOMIC_PROMPTS.values(),
    ]
    return sentences + templates * 5


def _st_modules(
    folder: Path,
    *,
    pooling: str,
    max_seq_length: int,
    dense: tuple[tuple[int, int, bool, Any], ...] = (),
    prompts: dict[str, str] | None = None,
) -> None:
    """The sentence-transformers files: Transformer, Pooling (`pooling` mode), each
    (in, out, bias, activation) Dense saved by sentence-transformers itself, Normalize."""
    from sentence_transformers.models import Dense, Pooling

    dim = _json(folder / "config.json")["hidden_size"]
    modules = [("", "Transformer"), ("1_Pooling", "Pooling")]
    Pooling(dim, pooling_mode=pooling, include_prompt=True).save(_mkdir(folder / "1_Pooling"))
    for in_features, out_features, bias, activation in dense:
        path = f"{len(modules)}_Dense"
        Dense(in_features, out_features, bias, activation).save(_mkdir(folder / path))
        modules.append((path, "Dense"))
    modules.append((f"{len(modules)}_Normalize", "Normalize"))
    _mkdir(folder / modules[-1][0])
    _write(
        folder / "modules.json",
        [
            {"idx": i, "name": str(i), "path": p, "type": f"sentence_transformers.models.{t}"}
            for i, (p, t) in enumerate(modules)
        ],
    )
    _write(folder / "sentence_bert_config.json", {"max_seq_length": max_seq_length})
    _write(
        folder / "config_sentence_transformers.json",
        {"prompts": prompts or {}, "default_prompt_name": None, "similarity_fn_name": "cosine"},
    )


def _mkdir(path: Path) -> str:
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def _write(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2))


def _save(folder: Path, model_cls: type, config: Any) -> None:
    _seed()
    model_cls(config).save_pretrained(folder)
    if config.model_type in ("bert", "xlm-roberta"):
        tiny_models.as_on_the_hub(folder)


# --- builders ------------------------------------------------------------------------------


def _bert(folder: Path, pooling: str, max_seq_length: int, dense: tuple = ()) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizer

    _bert_tokenizer(folder, BertTokenizer)
    config = BertConfig(vocab_size=len(_vocab()), max_position_embeddings=128, **SMALL)
    _save(folder, BertModel, config)
    _st_modules(folder, pooling=pooling, max_seq_length=max_seq_length, dense=dense)
    return folder


def build_bert_cls(folder: Path) -> Path:
    """BERT (WordPiece) with CLS pooling, like BAAI/bge-small-en-v1.5."""
    return _bert(folder, "cls", 128)


def build_bert_max(folder: Path) -> Path:
    """BERT with max pooling; max_seq_length 64 below the tokenizer's 128 (as all-MiniLM's
    256 is below its 512), so the context length is sentence-transformers', not the
    tokenizer's."""
    return _bert(folder, "max", 64)


def build_labse_dense(folder: Path) -> Path:
    """BERT, CLS pooling, Dense 32->32 with Tanh and bias, Normalize: like LaBSE."""
    import torch

    return _bert(folder, "cls", 128, dense=((32, 32, True, torch.nn.Tanh()),))


def _qwen3_tokenizer(folder: Path, eos_template: bool, max_length: int) -> Any:
    """Qwen3-Embedding's tokenizer appends <|endoftext|> to each sequence; the reranker's
    adds nothing (a pair is just concatenated)."""
    from transformers import Qwen2Tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    template = "$A:0 <|endoftext|>:0 | $A:0 <|endoftext|>:0 $B:1 <|endoftext|>:1"
    return wrap(
        folder,
        byte_bpe(_sentences(), QWEN3_SPECIALS),
        Qwen2Tokenizer,
        template if eos_template else None,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        additional_special_tokens=QWEN3_SPECIALS[1:],
        padding_side="left",
        model_max_length=max_length,
    )


def _qwen3_config(tokenizer: Any, **kwargs: Any) -> Any:
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=tokenizer.model_max_length,
        num_key_value_heads=1,  # grouped-query attention, as the real ones
        head_dim=16,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        **SMALL,
        **kwargs,
    )


def build_qwen3_embedding(folder: Path) -> Path:
    """Qwen3Model (decoder) with a byte-level BPE that appends <|endoftext|>, left padding,
    last-token pooling and an instruction prompt for queries: like Qwen3-Embedding."""
    from transformers import Qwen3Model

    tokenizer = _qwen3_tokenizer(folder, eos_template=True, max_length=128)
    _save(folder, Qwen3Model, _qwen3_config(tokenizer))
    _st_modules(folder, pooling="lasttoken", max_seq_length=128, prompts=QWEN3_EMBED_PROMPTS)
    return folder


def build_modernbert(folder: Path) -> Path:
    """ModernBertModel (alternating global / local attention) with a byte-level BPE and a
    `[CLS] $A [SEP]` template, mean pooling: like nomic-ai/modernbert-embed-base."""
    from transformers import ModernBertConfig, ModernBertModel, TokenizersBackend

    folder.mkdir(parents=True, exist_ok=True)
    specials = {"unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "mask": "[MASK]"}
    tokenizer = wrap(
        folder,
        byte_bpe(_sentences(), list(specials.values())),
        TokenizersBackend,
        "[CLS]:0 $A:0 [SEP]:0 | [CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        **{f"{k}_token": t for k, t in specials.items()},
        model_input_names=["input_ids", "attention_mask"],  # no token_type_ids
        model_max_length=128,
    )
    cls, sep, pad = (tokenizer.convert_tokens_to_ids(specials[k]) for k in ("cls", "sep", "pad"))
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=128,
        global_attn_every_n_layers=2,  # layer 0 global, layer 1 local (a 16-token window)
        local_attention=16,
        pad_token_id=pad,
        cls_token_id=cls,
        sep_token_id=sep,
        bos_token_id=cls,
        eos_token_id=sep,
        **SMALL,
    )
    _save(folder, ModernBertModel, config)
    _st_modules(folder, pooling="mean", max_seq_length=128, prompts=NOMIC_PROMPTS)
    return folder


def _xlmr_tokenizer(folder: Path) -> Any:
    from transformers import XLMRobertaTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    backend = unigram(_sentences(), ["<s>", "<pad>", "</s>", "<unk>"], "<unk>")
    backend.add_special_tokens(["<mask>"])
    return wrap(
        folder,
        backend,
        XLMRobertaTokenizer,
        "<s>:0 $A:0 </s>:0 | <s>:0 $A:0 </s>:0 </s>:0 $B:1 </s>:1",
        model_max_length=128,
    )


def _xlmr_config(tokenizer: Any, **kwargs: Any) -> Any:
    from transformers import XLMRobertaConfig

    # positions start at padding_idx + 1: two more than the longest input
    return XLMRobertaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=128 + 2,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **SMALL,
        **kwargs,
    )


def build_xlmr(folder: Path) -> Path:
    """XLMRobertaModel with a Unigram (SentencePiece-style) tokenizer, CLS pooling: like
    BAAI/bge-m3's dense embeddings."""
    from transformers import XLMRobertaModel

    _save(folder, XLMRobertaModel, _xlmr_config(_xlmr_tokenizer(folder)))
    _st_modules(folder, pooling="cls", max_seq_length=128)
    return folder


def _gemma_tokenizer(folder: Path, max_length: int, **options: Any) -> Any:
    """A Gemma SentencePiece BPE tokenizer (byte fallback, <bos>/<eos> added) trained on
    the family sentences; `options` go to the SentencePiece trainer."""
    from transformers import GemmaTokenizer

    sentencepiece(
        folder / "tokenizer.model",
        _sentences(),
        vocab_size=400,
        model_type="bpe",
        byte_fallback=True,
        add_dummy_prefix=False,
        **options,
        **spm_ids(pad="<pad>", eos="<eos>", bos="<bos>", unk="<unk>"),
    )
    # transformers 5: GemmaTokenizerFast(vocab_file=...) builds an empty vocabulary (every
    # text one <unk>); from_pretrained converts the folder's tokenizer.model
    tokenizer = GemmaTokenizer.from_pretrained(
        folder, add_bos_token=True, add_eos_token=True, model_max_length=max_length
    )
    tokenizer.init_kwargs.pop("vocab_file", None)  # not this folder's path in tokenizer_config
    return tokenizer


def build_gemma3_dense(folder: Path) -> Path:
    """Bidirectional Gemma3TextModel with a SentencePiece BPE tokenizer adding <bos> and
    <eos>, mean pooling, Dense 32->64 and 64->32 (no bias, Identity), Normalize and
    task prompts: like google/embeddinggemma-300m."""
    import torch
    from transformers import Gemma3TextConfig, Gemma3TextModel

    tokenizer = _gemma_tokenizer(
        folder,
        128,
        split_digits=True,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
    )
    tokenizer.save_pretrained(folder)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=128,
        num_key_value_heads=1,
        head_dim=16,
        query_pre_attn_scalar=16,
        # a bidirectional window is halved by the config: 16 -> 9 saved, 5 once loaded again
        sliding_window=16,
        layer_types=["sliding_attention", "full_attention"],
        use_bidirectional_attention=True,  # as EmbeddingGemma's config
        **SMALL,
    )
    _save(folder, Gemma3TextModel, config)
    identity = torch.nn.Identity()
    dense = ((32, 64, False, identity), (64, 32, False, identity))
    _st_modules(folder, pooling="mean", max_seq_length=128, dense=dense, prompts=GEMMA_PROMPTS)
    return folder


def build_siglip(folder: Path) -> Path:
    """SiglipModel with tiny text (64 positions) and vision (32 px, patch 8) towers and its
    processor: the slow SiglipImageProcessor and a SiglipTokenizer on a trained spiece.model."""
    from transformers import (
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
        SiglipProcessor,
        SiglipTokenizer,
    )

    # SigLIP's ids: <pad> 0, </s> 1 (eos, and the tokenizer's pad), <unk> 2, no <bos>
    model = sentencepiece(
        folder / "spiece.model",
        _sentences(),
        vocab_size=300,
        **spm_ids(pad="<pad>", eos="</s>", unk="<unk>"),
    )
    tokenizer = SiglipTokenizer(str(model), model_max_length=64)
    image_processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    config = SiglipConfig(
        text_config={
            **SMALL,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 64,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        vision_config={**SMALL, "image_size": 32, "patch_size": 8},
    )
    _save(folder, SiglipModel, config)
    return folder


def build_siglip2(folder: Path) -> Path:
    """Siglip2Model (NaFlex: patches of 16 px, up to 256 per image, the processor's
    defaults) with tiny towers and a Gemma SentencePiece tokenizer: like
    google/siglip2-base-patch16-naflex."""
    from transformers import (
        Siglip2Config,
        Siglip2ImageProcessor,
        Siglip2Model,
        Siglip2Processor,
    )

    tokenizer = _gemma_tokenizer(folder, 64)
    image_processor = Siglip2ImageProcessor(patch_size=16, max_num_patches=256)
    Siglip2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    config = Siglip2Config(
        text_config={
            **SMALL,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 64,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={**SMALL, "patch_size": 16, "num_patches": 256},
    )
    _save(folder, Siglip2Model, config)
    return folder


def build_xlmr_reranker(folder: Path) -> Path:
    """XLMRobertaForSequenceClassification (one label) with the Unigram tokenizer: like
    BAAI/bge-reranker-v2-m3."""
    from transformers import XLMRobertaForSequenceClassification

    config = _xlmr_config(_xlmr_tokenizer(folder), num_labels=1, initializer_range=0.5)
    _save(folder, XLMRobertaForSequenceClassification, config)
    return folder


def build_qwen3_reranker(folder: Path) -> Path:
    """Qwen3ForSequenceClassification (one label) with the byte-level BPE (pad token set,
    left padding) and 512 positions, room for the card's chat template around a pair: like
    tomaarsen/Qwen3-Reranker-0.6B-seq-cls."""
    from transformers import Qwen3ForSequenceClassification

    tokenizer = _qwen3_tokenizer(folder, eos_template=False, max_length=512)
    config = _qwen3_config(tokenizer, num_labels=1, initializer_range=0.5)
    _save(folder, Qwen3ForSequenceClassification, config)
    return folder


# --- the families --------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """How a family is built and what a service serving it must report."""

    build: Callable[[Path], Path]
    kind: str  # "embed", "rerank" or "image-text"
    example: str  # a real Hub model of the family
    context_length: int  # what max_input_tokens must say: where inputs are truncated
    tokenizer: str  # the class AutoTokenizer loads (transformers 5: no "...Fast" classes)
    pooling: str | None = None  # sentence-transformers pooling mode (embedders)
    dim: int | None = None  # embedding dimension (None: a reranker)
    dense: int = 0  # sentence-transformers Dense modules after pooling
    prompts: dict[str, str] = field(default_factory=dict)  # config_sentence_transformers.json
    adapters: tuple[str, ...] = ()  # LoRA task adapters in subfolders (peft)


FAMILIES: dict[str, Family] = {
    "bert-mean": Family(
        build_bert_embedder,
        "embed",
        "sentence-transformers/all-MiniLM-L6-v2",
        128,
        "BertTokenizer",
        "mean",
        32,
        prompts=BERT_PROMPTS,
    ),
    "bert-cls": Family(
        build_bert_cls, "embed", "BAAI/bge-small-en-v1.5", 128, "BertTokenizer", "cls", 32
    ),
    "bert-max": Family(
        build_bert_max,
        "embed",
        "sentence-transformers/bert-base-nli-max-tokens",
        64,
        "BertTokenizer",
        "max",
        32,
    ),
    "qwen3-embedding": Family(
        build_qwen3_embedding,
        "embed",
        "Qwen/Qwen3-Embedding-0.6B",
        128,
        "Qwen2Tokenizer",
        "lasttoken",
        32,
        prompts=QWEN3_EMBED_PROMPTS,
    ),
    "modernbert": Family(
        build_modernbert,
        "embed",
        "nomic-ai/modernbert-embed-base",
        128,
        "TokenizersBackend",
        "mean",
        32,
        prompts=NOMIC_PROMPTS,
    ),
    "xlm-r": Family(build_xlmr, "embed", "BAAI/bge-m3", 128, "XLMRobertaTokenizer", "cls", 32),
    "gemma3-dense": Family(
        build_gemma3_dense,
        "embed",
        "google/embeddinggemma-300m",
        128,
        "GemmaTokenizer",
        "mean",
        32,
        dense=2,
        prompts=GEMMA_PROMPTS,
    ),
    "labse-dense": Family(
        build_labse_dense,
        "embed",
        "sentence-transformers/LaBSE",
        128,
        "BertTokenizer",
        "cls",
        32,
        dense=1,
    ),
    "clip": Family(
        tiny_models.build_clip,
        "image-text",
        "patrickjohncyh/fashion-clip",
        77,
        "CLIPTokenizer",
        dim=16,
    ),
    "siglip": Family(
        build_siglip, "image-text", "google/siglip-base-patch16-224", 64, "SiglipTokenizer", dim=32
    ),
    "siglip2": Family(
        build_siglip2,
        "image-text",
        "google/siglip2-base-patch16-naflex",
        64,
        "Siglip2Tokenizer",
        dim=32,
    ),
    "xlm-r-reranker": Family(
        build_xlmr_reranker, "rerank", "BAAI/bge-reranker-v2-m3", 128, "XLMRobertaTokenizer"
    ),
    "qwen3-reranker": Family(
        build_qwen3_reranker,
        "rerank",
        "tomaarsen/Qwen3-Reranker-0.6B-seq-cls",
        512,
        "Qwen2Tokenizer",
    ),
    # transformers 5 model types, saved by sentence-transformers 6 (tests.families_2026)
    "embedding_gemma2": Family(
        families_2026.build_embedding_gemma2,
        "embed",
        "google/embeddinggemma-2",
        128,
        "GemmaTokenizer",
        "mean",
        32,
        prompts=families_2026.EMBEDDING_GEMMA2_PROMPTS,
    ),
    "jina_embeddings_v3": Family(
        families_2026.build_jina_embeddings_v3,
        "embed",
        "jinaai/jina-embeddings-v3-hf",
        128,
        "XLMRobertaTokenizer",
        "mean",
        32,
        prompts={**families_2026.ST6_EMPTY_PROMPTS, **families_2026.JINA_V3_PROMPTS},
        adapters=families_2026.JINA_V3_ADAPTERS,
    ),
    "gte": Family(
        families_2026.build_gte,
        "embed",
        "Alibaba-NLP/gte-multilingual-base",
        128,
        "XLMRobertaTokenizer",
        "cls",
        32,
        prompts=families_2026.ST6_EMPTY_PROMPTS,
    ),
    "nomic_bert": Family(
        families_2026.build_nomic_bert,
        "embed",
        "nomic-ai/nomic-embed-text-v1.5",
        128,
        "BertTokenizer",
        "mean",
        32,
        prompts=NOMIC_PROMPTS,
    ),
    "eurobert": Family(
        families_2026.build_eurobert,
        "embed",
        "EuroBERT/EuroBERT-210m",
        128,
        "TokenizersBackend",
        "mean",
        32,
        prompts=families_2026.ST6_EMPTY_PROMPTS,
    ),
    "ultrabert": Family(
        families_2026.build_ultrabert,
        "embed",
        "dmis-lab/UltraBERT-Embed-150M",
        128,
        "TokenizersBackend",
        "mean",
        32,
        prompts=families_2026.ULTRABERT_PROMPTS,
    ),
    "modernvbert": Family(
        families_2026.build_modernvbert,
        "image-text",
        "ModernVBERT/bimodernvbert",
        128,
        "TokenizersBackend",
        "mean",
        32,
        prompts=families_2026.ST6_EMPTY_PROMPTS,
    ),
}


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
