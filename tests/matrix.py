"""The model-family matrix: which backend serves each family of tests.families natively and
why the others fall back, and docs/models.md's table rendered from it
(`python -m tests.matrix` rewrites the table)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.families import FAMILIES

BACKENDS = ("torch", "optimum", "ctranslate2")
ONNX_FAMILIES = (
    "bert-mean",
    "bert-cls",
    "modernbert",
    "xlm-r",
    "gemma3-dense",
    "labse-dense",
    "embedding_gemma2",
    "gte",
    "nomic_bert",
    "eurobert",
    "ultrabert",
)
CT2_FAMILIES = ("bert-mean", "bert-cls", "bert-max", "xlm-r", "labse-dense")
IMAGE_TEXT = "ONNX export covers text embedders only, not image-text models"
RERANKER = "ONNX export covers text embedders only, not rerankers"
TASK_ADAPTERS = (
    "its task adapters (classification, retrieval_passage, retrieval_query, separation, "
    "text_matching) are applied on torch only"
)
# What each backend does with each family: served natively, or on torch for this reason.
ONNX_FALLBACKS = {
    "bert-max": "the ONNX path has no max pooling",
    "qwen3-embedding": "the ONNX path has no lasttoken pooling",
    "clip": IMAGE_TEXT,
    "siglip": IMAGE_TEXT,
    "siglip2": IMAGE_TEXT,
    "modernvbert": IMAGE_TEXT,
    "xlm-r-reranker": RERANKER,
    "qwen3-reranker": RERANKER,
    "jina_embeddings_v3": TASK_ADAPTERS,
}
NOT_CONVERTED = (
    "CTranslate2 converts bert, camembert, distilbert, roberta, xlm-roberta encoders, not"
)
CT2_FALLBACKS = {
    "qwen3-embedding": f"{NOT_CONVERTED} qwen3",
    "modernbert": f"{NOT_CONVERTED} modernbert",
    "gemma3-dense": f"{NOT_CONVERTED} gemma3_text",
    "embedding_gemma2": f"{NOT_CONVERTED} embedding_gemma2_text",
    "jina_embeddings_v3": TASK_ADAPTERS,
    "gte": f"{NOT_CONVERTED} gte",
    "nomic_bert": f"{NOT_CONVERTED} nomic_bert",
    "eurobert": f"{NOT_CONVERTED} eurobert",
    "ultrabert": f"{NOT_CONVERTED} ultrabert",
}
CT2_NOT_TEXT = "the CTranslate2 engine serves text embedders only"
# The table's words for each family (what it is, its tokenizer's format).
TITLES = {
    "bert-mean": "BERT, mean pooling (WordPiece)",
    "bert-cls": "BERT, CLS pooling (WordPiece)",
    "bert-max": "BERT, max pooling (WordPiece)",
    "labse-dense": "LaBSE-like: BERT, CLS, Dense + tanh (WordPiece)",
    "xlm-r": "XLM-R, CLS (Unigram)",
    "modernbert": "ModernBERT, mean (byte-level BPE)",
    "gemma3-dense": "EmbeddingGemma-like: Gemma3 text, mean, Dense 768→3072→768 (SentencePiece)",
    "qwen3-embedding": "Qwen3-Embedding: decoder, last token, left padding, instruction prompts "
    "(byte-level BPE)",
    "clip": "CLIP (CLIP BPE)",
    "siglip": "SigLIP (SentencePiece, slow tokenizer)",
    "siglip2": "SigLIP2 NaFlex (Gemma SentencePiece; patch masks and shapes)",
    "xlm-r-reranker": "XLM-R reranker, sequence classification, 1 label (Unigram)",
    "qwen3-reranker": "Qwen3-Reranker, seq-cls conversion (byte-level BPE)",
    "embedding_gemma2": "EmbeddingGemma 2, text tower: bidirectional Gemma, mean, task prompts "
    "(SentencePiece)",
    "jina_embeddings_v3": "jina-embeddings-v3, native: XLM-R with RoPE, mean, task prompts and "
    "LoRA task adapters (Unigram)",
    "gte": "gte-multilingual, native: RoPE BERT, CLS (Unigram)",
    "nomic_bert": "nomic-embed-text-v1.5, native: RoPE, SwiGLU, mean, search_query / "
    "search_document prompts (WordPiece)",
    "eurobert": "EuroBERT: Llama-style bidirectional encoder, mean (byte-level BPE)",
    "ultrabert": "UltraBERT: sliding-window and full attention, mean (byte-level BPE)",
    "modernvbert": "ModernVBERT: images as tokens of a ModernBERT encoder, mean "
    "(byte-level BPE; run by sentence-transformers 6)",
}
DOC = Path(__file__).resolve().parents[1] / "docs" / "models.md"
HEADER = "| Family (tokenizer) | Example | `torch` | `optimum` (ONNX) | `ctranslate2` |"


def outcome(name: str, backend: str) -> tuple[str, str | None]:
    """(the backend /v1/models must report for family `name` served with BACKEND=`backend`,
    the fallback reason logged, if any).

    Raises:
        KeyError: the matrix says neither that the backend serves the family nor why not.
    """
    native = {"torch": FAMILIES, "optimum": ONNX_FAMILIES, "ctranslate2": CT2_FAMILIES}
    if name in native[backend]:
        return backend, None
    reasons = {"optimum": ONNX_FALLBACKS, "ctranslate2": CT2_FALLBACKS}[backend]
    if name in reasons:
        return "torch", reasons[name]
    if backend == "ctranslate2" and FAMILIES[name].kind != "embed":
        return "torch", CT2_NOT_TEXT
    raise KeyError(f"tests.matrix: {name} on {backend} is neither native nor a fallback")


def _cell(name: str, backend: str) -> str:
    runs_on, reason = outcome(name, backend)
    if reason is None:
        return "native"
    if FAMILIES[name].kind == "image-text":
        return "torch: image-text model"
    if FAMILIES[name].kind == "rerank":
        return "torch: reranker"
    short = {
        "no max pooling": "no max pooling",
        "no lasttoken pooling": "no lasttoken pooling",
        NOT_CONVERTED: "not an encoder it converts",
        TASK_ADAPTERS: "task adapters (LoRA)",
    }
    return "torch: " + next((v for k, v in short.items() if k in reason), reason)


def table() -> str:
    """docs/models.md's family table, one row per family in FAMILIES order."""
    rows = [HEADER, "|---|---|---|---|---|"]
    for name, family in FAMILIES.items():
        cells = [_cell(name, backend) for backend in BACKENDS]
        rows.append(f"| {TITLES[name]} | `{family.example}` | {' | '.join(cells)} |")
    return "\n".join(rows) + "\n"


def documented() -> str:
    """The table as docs/models.md has it (from its header to the first blank line)."""
    text = DOC.read_text()
    start = text.index(HEADER)
    return text[start : text.index("\n\n", start) + 1]


def main() -> int:
    """Rewrite docs/models.md's table from the matrix."""
    DOC.write_text(DOC.read_text().replace(documented(), table()))
    print(f"{DOC}: {len(FAMILIES)} families")
    return 0


if __name__ == "__main__":
    sys.exit(main())
