"""transformers, as the collators, the image-text runner and the model check use it, at the pin."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract.pins import assert_pinned
from tests.contract.test_tokenizers import _tokenizer


def test_the_installed_version_is_the_pin():
    assert_pinned("transformers")


@pytest.mark.filterwarnings("ignore:`max_length` is ignored")  # as SlowCollator calls pad
def test_a_fast_tokenizer_exposes_what_the_collator_reads():
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from handlers.engine.collate import UNBOUNDED

    hf = PreTrainedTokenizerFast(tokenizer_object=_tokenizer(), pad_token="[PAD]")
    assert hf.is_fast and isinstance(hf.backend_tokenizer, Tokenizer)
    assert hf.model_max_length >= UNBOUNDED  # none declared: "no truncation" to us
    assert (hf.pad_token_id, hf.pad_token_type_id, hf.padding_side) == (0, 0, "right")
    assert "input_ids" in hf.model_input_names and "attention_mask" in hf.model_input_names
    hf.truncation_side = "left"  # what a batch's truncation side sets
    padded = hf.pad(
        {"input_ids": [[2, 6, 7, 3], [2, 3]]},
        padding=True,
        max_length=4,
        return_attention_mask=True,
        return_tensors="np",
    )
    assert padded["input_ids"].tolist() == [[2, 6, 7, 3], [2, 3, 0, 0]]
    assert padded["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]


def test_a_slow_tokenizer_prepares_each_text_for_the_slow_collator():
    """SigLIP's SentencePiece tokenizer (a Python one) builds each row itself."""
    import inspect

    from transformers import PreTrainedTokenizer, SiglipTokenizer

    assert issubclass(SiglipTokenizer, PreTrainedTokenizer)
    prepare = inspect.signature(PreTrainedTokenizer.prepare_for_model).parameters
    assert list(prepare)[1] == "ids"
    assert {"add_special_tokens", "truncation", "max_length", "return_attention_mask"} <= set(
        prepare
    )


def test_the_auto_classes_we_load_with():
    from transformers import (
        AutoModel,
        AutoModelForSequenceClassification,
        AutoProcessor,
        AutoTokenizer,
    )

    for auto in (AutoModel, AutoProcessor, AutoTokenizer, AutoModelForSequenceClassification):
        assert callable(auto.from_pretrained)


def test_a_sequence_classifier_gives_logits_per_label():
    """What classifier.py reads: `logits` (inputs x labels), `config.id2label`."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=16,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        num_labels=3,
    )
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():
        out = model(input_ids=torch.ones(2, 4, dtype=torch.long))
    assert out.logits.shape == (2, 3) and len(model.config.id2label) == 3


@pytest.mark.slow
def test_get_features_return_the_projection_as_pooler_output(tmp_path: Path):
    """transformers 5: get_text_features / get_image_features return the tower's output
    with the projected embeddings as `pooler_output` (infinity_runners._projected)."""
    import torch
    from transformers import AutoModel, AutoProcessor

    from tests.tiny_models import build_clip

    folder = build_clip(tmp_path / "clip")
    model = AutoModel.from_pretrained(folder).eval()
    processor = AutoProcessor.from_pretrained(folder)
    with torch.no_grad():
        text = model.get_text_features(**processor(text=["a b"], return_tensors="pt"))
        pixels = processor(images=[torch.zeros(3, 32, 32)], return_tensors="pt")
        image = model.get_image_features(**pixels)
    assert text.pooler_output.shape == (1, model.config.projection_dim)
    assert image.pooler_output.shape == (1, model.config.projection_dim)
