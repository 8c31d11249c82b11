"""Tiny random sequence classifiers built at test time: a single-text BERT classifier, a
multi-label one, and a pair classifier (NLI-like) saved by sentence-transformers 6 as a
CrossEncoder."""

from __future__ import annotations

from pathlib import Path

from tests.tiny_models import SMALL, _bert_tokenizer, _seed, _vocab

SENTIMENT = ("negative", "neutral", "positive")
NLI = ("contradiction", "entailment", "neutral")
TOPICS = ("sports", "politics", "science", "travel")


def _classifier(folder: Path, labels: tuple[str, ...], **config: object) -> object:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    _bert_tokenizer(folder, BertTokenizerFast)
    _seed()
    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=len(_vocab()),
            max_position_embeddings=128,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            # wide weights: the labels' probabilities differ well beyond the tolerances
            initializer_range=0.5,
            **SMALL,
            **config,
        )
    )
    model.save_pretrained(folder)
    return model


def build_sentiment(folder: Path) -> Path:
    """A single-text classifier with three exclusive labels (a softmax)."""
    _classifier(folder, SENTIMENT)
    return folder


def build_topics(folder: Path) -> Path:
    """A multi-label classifier (problem_type multi_label_classification: a sigmoid each)."""
    _classifier(folder, TOPICS, problem_type="multi_label_classification")
    return folder


def build_nli(folder: Path) -> Path:
    """A pair classifier with three labels, saved by sentence-transformers as a CrossEncoder."""
    from sentence_transformers import CrossEncoder

    _classifier(folder / "source", NLI)
    CrossEncoder(str(folder / "source")).save_pretrained(str(folder / "model"))
    return folder / "model"
