"""What the tiny family builders share: prompts, the tokenizer corpus and tokenizers, ST files."""

from __future__ import annotations

import json
import random
from functools import cache
from pathlib import Path
from typing import Any

from tests import tiny_models
from tests.tiny_models import WORDS, _seed
from tests.tiny_tokenizers import sentencepiece, spm_ids, unigram, wrap

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


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


# --- tokenizers of several families --------------------------------------------------------


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
