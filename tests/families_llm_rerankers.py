"""A tiny random causal-LM reranker built at test time, as Qwen3-Reranker's original
checkpoints are: a Qwen3ForCausalLM whose byte-level BPE has "yes" and "no" tokens, loaded by
sentence-transformers 6's CrossEncoder as a Transformer (text generation) and a LogitScore
(yes minus no at the last position), and saved by it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.families_decoders import _qwen3_config, _qwen3_tokenizer
from tests.families_shared import _save


def build_llm_reranker(folder: Path, max_length: int = 256, **sizes: Any) -> Path:
    """`sizes`: Qwen3Config's, in place of the tiny ones (bench.models' larger reranker)."""
    from sentence_transformers import CrossEncoder
    from transformers import Qwen3ForCausalLM

    source = folder / "source"
    words = ("yes", "no")
    tokenizer = _qwen3_tokenizer(source, eos_template=False, max_length=max_length, words=words)
    _save(source, Qwen3ForCausalLM, _qwen3_config(tokenizer, **sizes))
    CrossEncoder(str(source), device="cpu").save_pretrained(str(folder / "model"))
    return folder / "model"
