"""Tiny random causal-LM rerankers built at test time, as the real checkpoints are, loaded by
sentence-transformers 6's CrossEncoder as a Transformer (text generation) and a LogitScore at
the last position, and saved by it:

- Qwen3-Reranker (original checkpoints): Qwen3ForCausalLM, byte-level BPE, "yes" minus "no",
  no chat template (a pair is tokenised as two texts);
- mxbai-rerank-v2: Qwen2ForCausalLM, byte-level BPE, "1" minus "0", a chat template giving
  mixedbread's prompt (mxbai_rerank.MxbaiRerankV2) for a (query, document) pair;
- bge-reranker-v2-gemma: GemmaForCausalLM, SentencePiece, the raw "Yes" logit, a chat
  template giving FlagEmbedding's prompt (FlagLLMReranker) for a pair.

A pair reaches a chat template as messages of roles "query" and "document", and the
CrossEncoder's prompt (the service's `instruction`) as a "system" message before them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.families_decoders import _qwen3_config, _qwen3_tokenizer
from tests.families_shared import _save, _sentences
from tests.tiny_models import SMALL
from tests.tiny_tokenizers import sentencepiece, spm_ids

__all__ = [
    "BGE_GEMMA_PROMPT",
    "MXBAI_PREFIX",
    "MXBAI_SUFFIX",
    "MXBAI_TASK",
    "build_bge_gemma_reranker",
    "build_llm_reranker",
    "build_mxbai_reranker",
]


def _pair_template(render: str, default_system: str = "") -> str:
    """A chat template reading a pair's "query" and "document" messages and an optional
    "system" one (else `default_system`) into ns.query, ns.document and ns.system, then
    rendering the Jinja expression `render`: the whole prompt, with no generation prompt."""
    return (
        f"{{%- set ns = namespace(system={default_system!r}, query='', document='') -%}}"
        "{%- for message in messages -%}"
        "{%- if message.role == 'system' %}{% set ns.system = message.content %}"
        "{%- elif message.role == 'query' %}{% set ns.query = message.content %}"
        "{%- elif message.role == 'document' %}{% set ns.document = message.content %}"
        "{%- endif -%}"
        "{%- endfor -%}"
        f"{{{{ {render} }}}}"
    )


# mxbai_rerank.MxbaiRerankV2: prefix, ["instruction: {instruction}" "\n"] "query: {query}" "\n"
# "document: {document}" "\n" the task prompt, suffix
MXBAI_PREFIX = (
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\n<|im_start|>user\n"
)
MXBAI_TASK = (
    "You are a search relevance expert who evaluates how well documents match search queries. "
    "For each query-document pair, carefully analyze the semantic relationship between them, "
    "then provide your binary relevance judgment (0 for not relevant, 1 for relevant).\n"
    "Relevance:"
)
MXBAI_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n"
MXBAI_TEMPLATE = _pair_template(
    f"{MXBAI_PREFIX!r} + ('instruction: ' + ns.system + '\\n' if ns.system else '')"
    " + 'query: ' + ns.query + '\\ndocument: ' + ns.document + '\\n'"
    f" + {MXBAI_TASK!r} + {MXBAI_SUFFIX!r}"
)

# FlagEmbedding's FlagLLMReranker: <bos> "A: {query}" "\n" "B: {passage}" "\n" prompt, where
# the prompt is the caller's (here the system message) or this default
BGE_GEMMA_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the "
    "query by providing a prediction of either 'Yes' or 'No'."
)
BGE_GEMMA_TEMPLATE = _pair_template(
    "bos_token + 'A: ' + ns.query + '\\nB: ' + ns.document + '\\n' + ns.system",
    default_system=BGE_GEMMA_PROMPT,
)


def build_llm_reranker(folder: Path, max_length: int = 256, **sizes: Any) -> Path:
    """Qwen3-Reranker. `sizes`: Qwen3Config's, in place of the tiny ones (bench.models'
    larger reranker)."""
    from sentence_transformers import CrossEncoder
    from transformers import Qwen3ForCausalLM

    source = folder / "source"
    words = ("yes", "no")
    tokenizer = _qwen3_tokenizer(source, eos_template=False, max_length=max_length, words=words)
    _save(source, Qwen3ForCausalLM, _qwen3_config(tokenizer, **sizes))
    CrossEncoder(str(source), device="cpu").save_pretrained(str(folder / "model"))
    return folder / "model"


def build_mxbai_reranker(folder: Path) -> Path:
    """mxbai-rerank-v2: a Qwen2ForCausalLM (tied embeddings, as Qwen2.5-0.5B) whose byte-level
    BPE keeps each digit a token, scored "1" minus "0", with mixedbread's prompt as its chat
    template."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    source = folder / "source"
    # Qwen2's pre-tokenizer splits digits, so "0" and "1" are tokens of the byte alphabet
    tokenizer = _qwen3_tokenizer(source, eos_template=False, max_length=512)
    tokenizer.chat_template = MXBAI_TEMPLATE
    tokenizer.save_pretrained(source)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=tokenizer.model_max_length,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        num_key_value_heads=1,
        tie_word_embeddings=True,
        initializer_range=0.5,
        **SMALL,
    )
    _save(source, Qwen2ForCausalLM, config)
    return _save_cross_encoder(folder, true_token="1", false_token="0")


def build_bge_gemma_reranker(folder: Path) -> Path:
    """bge-reranker-v2-gemma: a GemmaForCausalLM whose SentencePiece BPE has "Yes" as a
    token, scored by the raw "Yes" logit, with FlagEmbedding's prompt as its chat template."""
    from transformers import GemmaConfig, GemmaForCausalLM

    source = folder / "source"
    tokenizer = _gemma_tokenizer(source, words=("Yes", "No"))
    tokenizer.chat_template = BGE_GEMMA_TEMPLATE
    tokenizer.save_pretrained(source)
    config = GemmaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        num_key_value_heads=1,
        head_dim=16,
        initializer_range=0.5,
        **SMALL,
    )
    _save(source, GemmaForCausalLM, config)
    return _save_cross_encoder(folder, true_token="Yes", false_token=None)


def _gemma_tokenizer(folder: Path, words: tuple[str, ...]) -> Any:
    """Gemma's SentencePiece BPE (byte fallback, <bos> added, no <eos>; as
    families_shared._gemma_tokenizer) trained with `words` often enough that each is a piece
    of the vocabulary, as "Yes" is one of Gemma's."""
    from transformers import GemmaTokenizer

    corpus = [*_sentences(), *list(words) * 100]
    ids = spm_ids(pad="<pad>", eos="<eos>", bos="<bos>", unk="<unk>")
    options = {"model_type": "bpe", "byte_fallback": True, "add_dummy_prefix": False, **ids}
    sentencepiece(folder / "tokenizer.model", corpus, vocab_size=400, **options)
    tokenizer = GemmaTokenizer.from_pretrained(
        folder, add_bos_token=True, add_eos_token=False, model_max_length=512
    )
    tokenizer.init_kwargs.pop("vocab_file", None)  # not this folder's path in tokenizer_config
    return tokenizer


def _save_cross_encoder(folder: Path, true_token: str, false_token: str | None) -> Path:
    """The CrossEncoder of folder/"source" (Transformer for text generation and a LogitScore
    of those tokens), saved by sentence-transformers into folder/"model"."""
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder.modules import LogitScore, Transformer

    transformer = Transformer(str(folder / "source"), transformer_task="text-generation")

    def token_id(text: str) -> int:  # as mxbai_rerank and FlagEmbedding find theirs
        (found,) = transformer.tokenizer(text, add_special_tokens=False)["input_ids"]
        return int(found)

    false_id = None if false_token is None else token_id(false_token)
    score = LogitScore(true_token_id=token_id(true_token), false_token_id=false_id)
    model = CrossEncoder(modules=[transformer, score], device="cpu")
    model.save_pretrained(str(folder / "model"))
    return folder / "model"
