"""BGE-M3-style models: a sentence-transformers dense pipeline with FlagEmbedding's
`sparse_linear` and `colbert_linear` heads beside it, whose one forward pass gives the dense
vector, the lexical weights and the ColBERT vectors as FlagEmbedding's M3 reference computes
them, run as a scheduler Runner."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from handlers.engine import identity
from handlers.engine.infinity import Loaded
from handlers.engine.multi_vector import pooled
from handlers.engine.seam import EmbedKey, SparseVector
from handlers.engine.st_runner import open_model, preprocess_texts, text_tokenizer
from handlers.model_specs import ModelSpec
from handlers.settings import Settings

__all__ = ["M3Stages", "has_heads", "load"]

HEADS = ("sparse_linear.pt", "colbert_linear.pt")  # state dicts of torch Linear layers
CAPABILITIES = frozenset({"embed", "sparse_embed", "multi_vector_embed"})
# FlagEmbedding drops these tokens' lexical weights (its _process_token_weights)
UNUSED = ("cls_token", "eos_token", "pad_token", "unk_token")


def has_heads(path: str, revision: str | None) -> bool:
    """Whether the model at `path` has both M3 heads beside its weights."""
    return all(identity.model_file(path, name, revision) is not None for name in HEADS)


def load(spec: ModelSpec, settings: Settings) -> Loaded:
    """The dense pipeline of `spec` loaded by sentence-transformers 6, and its heads
    (blocking)."""
    model, tokenizer, dtype = open_model("SentenceTransformer", spec, settings)
    sparse, colbert = (_head(spec, name, model) for name in HEADS)
    runner = M3Stages(model, text_tokenizer(model), sparse, colbert)
    return Loaded([runner], CAPABILITIES, "torch", tokenizer, dtype)


def _head(spec: ModelSpec, name: str, model: Any) -> Any:
    """One head: a Linear layer with the saved weights, on the model's device and dtype."""
    import torch

    file = identity.model_file(spec.path, name, spec.revision)
    state = torch.load(str(file), map_location="cpu", weights_only=True)
    out_features, in_features = state["weight"].shape
    layer = torch.nn.Linear(in_features, out_features, bias="bias" in state)
    layer.load_state_dict(state)
    first = next(model.parameters())
    return layer.to(device=first.device, dtype=first.dtype).eval()


class M3Stages:
    """An M3 model as a scheduler Runner: the texts through the pipeline's own `preprocess`
    (with the batch's truncation side) and modules (Normalize as the EmbedKey says), then from
    the last hidden states the outputs the key asks: the dense vector; the lexical weights
    (ReLU of sparse_linear per token, the largest per token id, positive ones only, special
    tokens dropped); the ColBERT vectors (colbert_linear over every token but the first,
    normalised). Owned by the scheduler's threads."""

    def __init__(self, model: Any, tokenizer: Any, sparse: Any, colbert: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.sparse = sparse
        self.colbert = colbert
        special = (tokenizer.special_tokens_map.get(name) for name in UNUSED)
        self.unused = {tokenizer.convert_tokens_to_ids(t) for t in special if t is not None}

    def prepare(self, inputs: list[Any], key: Hashable) -> tuple[Any, list[int]]:
        options = key if isinstance(key, EmbedKey) else EmbedKey()
        texts = [str(text) for text in inputs]
        side = options.truncation_direction
        features, counts = preprocess_texts(self.model, self.tokenizer, texts, side)
        return (features, options), counts

    def forward(self, prepared: tuple[Any, EmbedKey]) -> tuple[list[Any], float]:
        import torch
        from sentence_transformers.sentence_transformer.modules import Normalize
        from sentence_transformers.util import batch_to_device

        features, options = prepared
        outputs = options.outputs or ("dense",)
        with torch.inference_mode():
            features = batch_to_device(features, self.model.device)
            for module in self.model:
                if options.normalize or not isinstance(module, Normalize):
                    features = module(features)
            hidden = features["token_embeddings"]
            counts = features["attention_mask"].sum(dim=1).tolist()
            found: dict[str, list[Any]] = {}
            if "dense" in outputs:
                found["dense"] = list(features["sentence_embedding"].float().cpu().numpy())
            if "sparse" in outputs:
                weights = torch.relu(self.sparse(hidden)).squeeze(-1).float().cpu()
                ids = features["input_ids"].cpu()
                found["sparse"] = [self._lexical(w, i) for w, i in zip(weights, ids, strict=True)]
            if "multi_vector" in outputs:
                vectors = torch.nn.functional.normalize(self.colbert(hidden[:, 1:]), dim=-1)
                found["multi_vector"] = [
                    row[: int(n) - 1].float().cpu().numpy()
                    for row, n in zip(vectors, counts, strict=True)
                ]
        if not options.outputs:
            return found["dense"], options.pool_factor
        rows = [{name: found[name][i] for name in outputs} for i in range(len(counts))]
        return rows, options.pool_factor

    def _lexical(self, weights: Any, ids: Any) -> SparseVector:
        """One input's lexical weights: the largest weight of each token id it holds."""
        best: dict[int, float] = {}
        for weight, token in zip(weights.tolist(), ids.tolist(), strict=True):
            if token not in self.unused and weight > 0 and weight > best.get(token, 0.0):
                best[token] = weight
        indices = sorted(best)
        tokens = self.tokenizer.convert_ids_to_tokens(indices)
        return SparseVector(indices, [best[i] for i in indices], tokens)

    def finish(self, output: tuple[list[Any], float]) -> list[Any]:
        """The ColBERT vectors pooled as the key asks (no token kept out: the first, CLS, is
        already dropped)."""
        rows, factor = output
        if factor > 1 and rows and isinstance(rows[0], dict) and "multi_vector" in rows[0]:
            vectors = pooled([row["multi_vector"] for row in rows], factor, protected=0)
            for row, matrix in zip(rows, vectors, strict=True):
                row["multi_vector"] = matrix
        return rows
