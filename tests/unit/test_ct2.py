"""BACKEND=ctranslate2: which models it serves, from their config.json."""

from __future__ import annotations

import json

import pytest

from handlers.engine.ct2 import unsupported

ABSOLUTE = {"position_embedding_type": "absolute"}  # what hub configs of 2025 carry


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"model_type": "bert", "architectures": ["BertModel"], **ABSOLUTE}, None),
        ({"model_type": "xlm-roberta", "architectures": ["XLMRobertaModel"], **ABSOLUTE}, None),
        # saved by transformers 5, which no longer writes it: CTranslate2 4.8 cannot convert
        (
            {"model_type": "bert", "architectures": ["BertModel"]},
            'bert models only with position_embedding_type "absolute"',
        ),
        ({"model_type": "distilbert", "architectures": ["DistilBertModel"]}, None),
        ({"model_type": "clip", "architectures": ["CLIPModel"]}, "not image-text models"),
        (
            {"model_type": "bert", "architectures": ["BertForSequenceClassification"]},
            "not rerankers",
        ),
        ({"model_type": "mpnet", "architectures": ["MPNetModel"]}, "encoders, not mpnet"),
    ],
)
def test_only_encoder_text_embedders_are_served(tmp_path, config, reason):
    (tmp_path / "config.json").write_text(json.dumps(config))
    found = unsupported(str(tmp_path), None)
    assert found is None if reason is None else reason in found
