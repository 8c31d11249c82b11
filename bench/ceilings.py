"""In-process ceilings: sentence-transformers encode (torch) and raw onnxruntime sessions.

    python -m bench.ceilings --model PATH --served-id ID --cache DIR   # one JSON object

Each is measured at batch sizes 1..128 and reported at its best; the ONNX sessions run the
files BACKEND=optimum serves (handlers.engine.onnx_plan), and their embeddings are compared
with torch's (cosine) on varied sentences.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

BATCHES = (1, 8, 16, 32, 64, 128)
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."
# Varied text for the accuracy check (cosine to torch), short and long.
CHECK = [
    "A man is playing a guitar.",
    "Someone plays a guitar on stage tonight.",
    "The stock market fell sharply today after the announcement.",
    "How do I reset my password?",
    "Embeddings map text to vectors.",
    "Die Katze schläft auf dem Sofa.",
    "ok",
    "A long paragraph about the history of computing machines and their inventors. " * 12,
]


def throughput(encode, seconds: float) -> dict:
    """Sentences/s of `encode(batch)` per batch size, and the best."""
    by_batch = {}
    for size in BATCHES:
        batch = [SENTENCE] * size
        encode(batch)  # warm
        done, began = 0, time.perf_counter()
        while time.perf_counter() - began < seconds:
            encode(batch)
            done += size
        by_batch[size] = round(done / (time.perf_counter() - began), 1)
    best = max(by_batch, key=by_batch.get)
    return {"best_batch": best, "sps": by_batch[best], "by_batch": by_batch}


def onnx_encoder(folder: Path, max_length: int):
    """A raw onnxruntime session with the fast tokenizer, mean pooling and normalisation."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    (model_file,) = folder.glob("*.onnx")
    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding()
    names = {i.name for i in session.get_inputs()}

    def encode(texts: list[str]) -> np.ndarray:
        encoded = tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = session.run(["last_hidden_state"], feeds)[0]
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    return encode


def cosine(a: np.ndarray, b: np.ndarray) -> dict:
    sims = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return {"mean": round(float(sims.mean()), 5), "min": round(float(sims.min()), 5)}


def measure(model: str, served_id: str, cache: Path, seconds: float) -> dict:
    from sentence_transformers import SentenceTransformer

    from handlers.engine import onnx_plan as onnx

    st = SentenceTransformer(model, device="cpu")
    torch_encode = lambda texts: st.encode(texts, batch_size=len(texts))  # noqa: E731
    out = {"torch": throughput(torch_encode, seconds)}
    reference = st.encode(CHECK, normalize_embeddings=True)
    for precision, dtype in (("onnx_fp32", "auto"), ("onnx_int8", "int8")):
        plan = onnx.plan(model, served_id, dtype, cache)
        encode = onnx_encoder(plan.folder, st.max_seq_length)
        out[precision] = {**throughput(encode, seconds), "cosine": cosine(reference, encode(CHECK))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--served-id", required=True, help="names the export in the cache")
    parser.add_argument("--cache", type=Path, required=True, help="the ONNX export cache")
    parser.add_argument("--seconds", type=float, default=3.0, help="per batch size")
    args = parser.parse_args()
    print(json.dumps(measure(args.model, args.served_id, args.cache, args.seconds)))


if __name__ == "__main__":
    main()
