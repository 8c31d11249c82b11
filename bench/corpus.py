"""The fixed mixed-length corpus of the ingestion and rerank benchmarks (bench/corpus.jsonl).

    .venv/bin/python -m bench.corpus     # rewrites bench/corpus.jsonl (committed)

Real English prose: the docstrings of CPython's standard library, cut at sentence ends into
chunks whose token lengths (the bundled all-MiniLM-L6-v2 tokenizer, special tokens included)
follow a long-tailed log-normal mix: median about 60, clipped to 10..512. Seeded, so a rerun
on the same Python gives the same file; the benchmark reads the committed file only.
"""

from __future__ import annotations

import ast
import json
import random
import re
import sysconfig
from pathlib import Path

__all__ = ["CORPUS", "load"]

CORPUS = Path(__file__).with_name("corpus.jsonl")
CHUNKS = 1200
MEDIAN, SIGMA, LOWEST, HIGHEST = 48, 0.9, 10, 512  # whole sentences overshoot the target


def load() -> list[str]:
    """The committed chunks, in file order."""
    return [json.loads(line)["text"] for line in CORPUS.read_text().splitlines()]


def _sentences() -> list[str]:
    """Sentences of the standard library's prose docstrings, in a fixed order."""
    out: list[str] = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef):
                continue
            doc = ast.get_docstring(node) or ""
            for paragraph in re.split(r"\n\s*\n", doc):
                text = " ".join(paragraph.split())
                # prose only: no doctest, tables or signatures
                if len(text) < 40 or ">>>" in text or text.count("  ") or "|" in text:
                    continue
                out.extend(s for s in re.split(r"(?<=[.!?])\s+", text) if s)
    return out


def build() -> list[str]:
    from tokenizers import Tokenizer

    from handlers.settings import load_settings

    folder = Path(load_settings({}).models[0].path)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    rng = random.Random(20261201)
    sentences = _sentences()
    rng.shuffle(sentences)
    chunks, cursor = [], 0
    while len(chunks) < CHUNKS and cursor < len(sentences):
        target = min(HIGHEST, max(LOWEST, round(rng.lognormvariate(0, SIGMA) * MEDIAN)))
        chunk: list[str] = []
        while cursor < len(sentences):
            chunk.append(sentences[cursor])
            cursor += 1
            if len(tokenizer.encode(" ".join(chunk)).ids) >= target:
                break
        text = " ".join(chunk)
        if LOWEST <= len(tokenizer.encode(text).ids) <= HIGHEST:
            chunks.append(text)
    return chunks


def main() -> None:
    chunks = build()
    CORPUS.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in chunks))
    print(f"wrote {len(chunks)} chunks to {CORPUS}")


if __name__ == "__main__":
    main()
