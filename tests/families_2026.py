"""Tiny text embedders only transformers 5 defines, saved in sentence-transformers 6's format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.families_shared import NOMIC_PROMPTS, _sentences, _xlmr_tokenizer
from tests.tiny_models import SMALL, _bert_tokenizer, _seed, _vocab
from tests.tiny_tokenizers import byte_bpe, wrap

__all__ = [
    "build_eurobert",
    "build_gte",
    "build_jina_embeddings_v3",
    "build_nomic_bert",
    "build_ultrabert",
]

# jina-embeddings-v3's config_sentence_transformers.json: one prompt per task (LoRA adapter)
JINA_V3_PROMPTS = {
    "retrieval.query": "Represent the query for retrieving evidence documents: ",
    "retrieval.passage": "Represent the document for retrieval: ",
    "separation": "",
    "classification": "",
    "text-matching": "",
}
# the -hf repository's PEFT LoRA adapters, one subfolder per task
JINA_V3_ADAPTERS = (
    "retrieval_query",
    "retrieval_passage",
    "separation",
    "classification",
    "text_matching",
)
ULTRABERT_PROMPTS = {
    "query": "Instruct: Given a web search query, retrieve relevant passages that answer the query"
    "\nQuery: ",
    "document": "",
}
ST6_EMPTY_PROMPTS = {"query": "", "document": ""}  # what sentence-transformers 6 saves by default


def st6_save(
    folder: Path,
    *,
    pooling: str,
    max_seq_length: int,
    prompts: dict[str, str] | None = None,
    **transformer: Any,
) -> None:
    """Load the transformers folder as sentence-transformers 6 does and save it in its format:
    Transformer, Pooling (`pooling`), Normalize; `prompts` in config_sentence_transformers.json
    (sentence-transformers adds empty "query" and "document" prompts where missing)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    module = Transformer(str(folder), max_seq_length=max_seq_length, **transformer)
    modules = [module, Pooling(module.get_embedding_dimension(), pooling), Normalize()]
    model = SentenceTransformer(
        modules=modules, prompts=prompts or {}, similarity_fn_name="cosine", device="cpu"
    )
    model.save(str(folder))


def _save(folder: Path, model_cls: type, config: Any) -> Any:
    _seed()
    model = model_cls(config)
    model.save_pretrained(folder)
    return model


# --- text embedders ------------------------------------------------------------------------


def build_gte(folder: Path) -> Path:
    """GteModel (RoPE, gated MLP, post-norm BERT) with the XLM-R Unigram tokenizer, CLS
    pooling, no prompts: like Alibaba-NLP/gte-multilingual-base."""
    from transformers import GteConfig, GteModel

    tokenizer = _xlmr_tokenizer(folder)
    config = GteConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=128,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        **SMALL,
    )
    _save(folder, GteModel, config)
    st6_save(folder, pooling="cls", max_seq_length=128)
    return folder


def build_nomic_bert(folder: Path) -> Path:
    """NomicBertModel (RoPE, SwiGLU) with a BERT WordPiece tokenizer, mean pooling and the
    search_query / search_document prompts: like nomic-ai/nomic-embed-text-v1.5."""
    from transformers import BertTokenizer, NomicBertConfig, NomicBertModel

    _bert_tokenizer(folder, BertTokenizer)
    config = NomicBertConfig(
        vocab_size=len(_vocab()), max_position_embeddings=128, type_vocab_size=2, **SMALL
    )
    _save(folder, NomicBertModel, config)
    st6_save(folder, pooling="mean", max_seq_length=128, prompts=NOMIC_PROMPTS)
    return folder


def _llama3_bpe(
    folder: Path, specials: dict[str, str], template: str, extra: tuple = (), **kw: Any
) -> Any:
    """A byte-level BPE with `specials` (role -> token) and `extra` special tokens (the first
    ids), loaded by AutoTokenizer as TokenizersBackend (hub: PreTrainedTokenizerFast), with a
    `template` post-processor."""
    from transformers import TokenizersBackend

    folder.mkdir(parents=True, exist_ok=True)
    backend = byte_bpe(_sentences(), list(dict.fromkeys([*specials.values(), *extra])))
    tokens = {f"{role}_token": token for role, token in specials.items()}
    return wrap(folder, backend, TokenizersBackend, template, model_max_length=128, **tokens, **kw)


def build_eurobert(folder: Path) -> Path:
    """EuroBertModel (Llama-style bidirectional encoder) with a Llama-3 style byte-level BPE
    adding <|begin_of_text|> and <|end_of_text|> (also the pad token), mean pooling: a
    sentence-transformers embedder on EuroBERT/EuroBERT-210m."""
    from transformers import EuroBertConfig, EuroBertModel

    bos, eos, mask = "<|begin_of_text|>", "<|end_of_text|>", "<|mask|>"
    tokenizer = _llama3_bpe(
        folder,
        {"bos": bos, "eos": eos, "pad": eos, "mask": mask},
        f"{bos}:0 $A:0 {eos}:0 | {bos}:0 $A:0 {eos}:0 $B:1 {eos}:1",
        model_input_names=["input_ids", "attention_mask"],
    )
    ids = {k: tokenizer.convert_tokens_to_ids(t) for k, t in (("bos", bos), ("eos", eos))}
    config = EuroBertConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=128,
        num_key_value_heads=1,
        pad_token_id=ids["eos"],
        bos_token_id=ids["bos"],
        eos_token_id=ids["eos"],
        mask_token_id=tokenizer.convert_tokens_to_ids(mask),
        **SMALL,
    )
    _save(folder, EuroBertModel, config)
    st6_save(folder, pooling="mean", max_seq_length=128)
    return folder


def build_ultrabert(folder: Path) -> Path:
    """UltrabertModel (bidirectional, sliding-window and full attention layers, per-layer-type
    RoPE) with a byte-level BPE and a `[CLS] $A [SEP]` template, mean pooling and an
    instruction prompt for queries: like dmis-lab/UltraBERT-Embed-150M (whose tokenizer and
    prompts are assumed here, not copied)."""
    from transformers import UltrabertConfig, UltrabertModel

    specials = {"pad": "[PAD]", "cls": "[CLS]", "sep": "[SEP]", "unk": "[UNK]", "mask": "[MASK]"}
    tokenizer = _llama3_bpe(
        folder,
        specials,
        "[CLS]:0 $A:0 [SEP]:0 | [CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        model_input_names=["input_ids", "attention_mask"],
    )
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    config = UltrabertConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=128,
        num_key_value_heads=1,
        layer_types=["sliding_attention", "full_attention"],
        sliding_window=8,  # a radius: each token sees 8 either side on layer 0
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=cls,
        eos_token_id=sep,
        **SMALL,
    )
    _save(folder, UltrabertModel, config)
    st6_save(folder, pooling="mean", max_seq_length=128, prompts=ULTRABERT_PROMPTS)
    return folder


def build_jina_embeddings_v3(folder: Path) -> Path:
    """JinaEmbeddingsV3Model (XLM-R with RoPE) with the XLM-R Unigram tokenizer, mean
    pooling, the five task prompts, and one PEFT LoRA adapter per task in a subfolder (applied
    as the card does: `load_adapter(folder, adapter_name=task, adapter_kwargs={"subfolder":
    task})`, then `set_adapter(task)`): like jinaai/jina-embeddings-v3-hf."""
    from transformers import JinaEmbeddingsV3Config, JinaEmbeddingsV3Model

    tokenizer = _xlmr_tokenizer(folder)
    config = JinaEmbeddingsV3Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=128 + 2,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **SMALL,
    )
    model = _save(folder, JinaEmbeddingsV3Model, config)
    for i, task in enumerate(JINA_V3_ADAPTERS):
        _lora_adapter(folder / task, model, ["q_proj", "k_proj", "v_proj", "o_proj"], seed=i)
    st6_save(folder, pooling="mean", max_seq_length=128, prompts=JINA_V3_PROMPTS)
    return folder


def _lora_adapter(folder: Path, model: Any, targets: list[str], seed: int, rank: int = 4) -> None:
    """A LoRA adapter on the `targets` linear layers of `model`, saved by peft itself
    (adapter_config.json + adapter_model.safetensors), with random non-zero A and B."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank,
        lora_alpha=8 * rank,  # scaled up: each adapter moves every vector well past 0.9999
        target_modules=targets,
        task_type="FEATURE_EXTRACTION",
        init_lora_weights=False,  # B random too: the adapter changes every vector
    )
    get_peft_model(copy.deepcopy(model), config).save_pretrained(folder)
