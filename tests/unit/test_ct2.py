"""BACKEND=ctranslate2: which models it serves, from their config.json."""

from __future__ import annotations

import json

import pytest

from handlers.engine.ct2 import unsupported


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"model_type": "bert", "architectures": ["BertModel"]}, None),
        ({"model_type": "xlm-roberta", "architectures": ["XLMRobertaModel"]}, None),
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
