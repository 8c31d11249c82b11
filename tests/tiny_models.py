"""Tiny random models built at test time (BERT embedder, BERT reranker, CLIP), no hub access."""

from __future__ import annotations

import json
from pathlib import Path

WORDS = (
    "the a an is are was of to and in on for with cat dog bird fish car house tree sun moon "
    "red green blue big small fast slow happy sad quick brown fox jumps over lazy paris "
    "france capital city berlin germany weather today rain cold hot hello world test query "
    "document image photo shirt dress shoe fashion model embedding rerank search"
).split()


SMALL = {  # every tower: hidden 32, 2 layers, 2 heads, intermediate 64
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}


def build_bert_embedder(folder: Path) -> Path:
    """A 2-layer BERT (hidden 32) with mean pooling, loadable as a sentence-transformer."""
    from transformers import BertConfig, BertModel, BertTokenizer

    _bert_tokenizer(folder, BertTokenizer)
    config = BertConfig(
        vocab_size=len(_vocab()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    _seed()
    BertModel(config).save_pretrained(folder)
    as_on_the_hub(folder)
    (folder / "modules.json").write_text(
        json.dumps(
            [
                {
                    "idx": 0,
                    "name": "0",
                    "path": "",
                    "type": "sentence_transformers.models.Transformer",
                },
                {
                    "idx": 1,
                    "name": "1",
                    "path": "1_Pooling",
                    "type": "sentence_transformers.models.Pooling",
                },
                {
                    "idx": 2,
                    "name": "2",
                    "path": "2_Normalize",
                    "type": "sentence_transformers.models.Normalize",
                },
            ]
        )
    )
    # prompts only apply when a request (or DEFAULT_PROMPT_NAMES) names one
    (folder / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "query : ", "document": "document : "}})
    )
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 128, "do_lower_case": False})
    )
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True})
    )
    (folder / "2_Normalize").mkdir(exist_ok=True)
    return folder


def build_bert_reranker(folder: Path) -> Path:
    """A BertForSequenceClassification with one label: Infinity serves it as a reranker."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    _bert_tokenizer(folder, BertTokenizer)
    config = BertConfig(
        vocab_size=len(_vocab()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=1,
        # wider than BERT's 0.02, so documents get scores that differ well beyond the
        # tests' tolerance (a swapped index must change a score the tests check)
        initializer_range=0.5,
    )
    _seed()
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


def build_clip(folder: Path, vision: dict | None = None) -> Path:
    """A CLIPModel with tiny text and vision towers (32 px, patch 8) and its processor;
    `vision` replaces the vision tower's config (its `image_size` sets the processor's)."""
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    folder.mkdir(parents=True, exist_ok=True)
    tokens = ["<|startoftext|>", "<|endoftext|>", *[c for c in "abcdefghijklmnopqrstuvwxyz"]]
    tokens += [c + "</w>" for c in "abcdefghijklmnopqrstuvwxyz"] + [w + "</w>" for w in WORDS]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    vision = vision or {
        "image_size": 32,
        "patch_size": 8,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
    }
    side = vision["image_size"]
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": side}, crop_size={"height": side, "width": side}
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    config = CLIPConfig(
        text_config={
            # CLIPTextConfig's default eos id (49407) is not in this vocabulary: the tower
            # would pool token 0 and give every text one vector. Tell it the tokenizer's ids.
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": vocab["<|endoftext|>"],
            "pad_token_id": vocab["<|endoftext|>"],
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
        },
        vision_config=vision,
        projection_dim=16,
    )
    _seed()
    CLIPModel(config).save_pretrained(folder)
    return folder


def _vocab() -> list[str]:
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"abcdefghijklmnopqrstuvwxyz"]


def _bert_tokenizer(folder: Path, cls: type) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(_vocab())) + "\n")
    # transformers 5: a tokenizer class called with vocab_file= builds an empty vocabulary;
    # from_pretrained reads the folder's vocab.txt
    cls.from_pretrained(folder, model_max_length=128).save_pretrained(folder)


def as_on_the_hub(folder: Path) -> None:
    """Add what the hub's BERT and XLM-R repositories' config.json carry and transformers 5
    no longer saves: `position_embedding_type: "absolute"` (CTranslate2 reads it)."""
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "position_embedding_type": "absolute"}))


def _seed() -> None:
    import torch

    torch.manual_seed(0)
