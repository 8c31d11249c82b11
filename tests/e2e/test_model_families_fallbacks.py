"""Families not served as asked: CTranslate2's fallback and conversions, a refused layout."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from handlers.core.dispatch import Core
from handlers.engine.backend import EngineBackend
from handlers.engine.loading import ModelLoadError
from handlers.media.fetcher import MediaFetcher
from handlers.settings import load_settings
from tests import families_2026_multimodal, oracles
from tests.e2e.family_checks import COSINE, TEXTS, cosines


async def test_a_bert_saved_by_transformers_5_falls_back_from_ctranslate2(
    family_models, tmp_path, caplog
):
    """CTranslate2 4.8 converts BERT only with `position_embedding_type` in config.json, which
    transformers 5 no longer saves: such a model is served on torch, with its reason, and
    still equals its oracle."""
    folder = shutil.copytree(family_models["bert-cls"], tmp_path / "saved-by-transformers-5")
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text())
    del config["position_embedding_type"]
    config_file.write_text(json.dumps(config))
    env = {"MODEL_NAMES": str(folder), "BACKEND": "ctranslate2", "HF_HOME": str(tmp_path)}
    settings = load_settings(env)
    core = Core(settings, EngineBackend(settings), MediaFetcher(settings))
    try:
        with caplog.at_level(logging.INFO):
            await core.start()
        (card,) = (await core.dispatch("/v1/models"))["data"]
        assert card["backend"] == "torch"
        reason = 'CTranslate2 converts bert models only with position_embedding_type "absolute"'
        assert reason in caplog.text and "serving it with BACKEND=torch" in caplog.text
        reply = await core.dispatch("/v1/embeddings", {"model": card["id"], "input": TEXTS})
        found = np.array([item["embedding"] for item in reply["data"]])
    finally:
        await core.stop()
    assert cosines(found, oracles.embed_oracle(folder, TEXTS)).min() >= COSINE


async def test_ctranslate2_never_serves_another_models_conversion(family_models, tmp_path):
    """Infinity names a CTranslate2 conversion after the model's folder name only: a second
    model in a folder of the same name is converted afresh, not served from the first's."""
    import torch
    from transformers import BertModel

    for retrained in (False, True):  # two models, each in a folder named `model`
        folder = shutil.copytree(family_models["bert-cls"], tmp_path / str(retrained) / "model")
        if retrained:  # the same architecture with other weights
            torch.manual_seed(1)
            model = BertModel.from_pretrained(folder)
            for weights in model.parameters():
                torch.nn.init.normal_(weights, std=0.5)
            model.save_pretrained(folder)
        env = {"MODEL_NAMES": str(folder), "BACKEND": "ctranslate2", "HF_HOME": str(tmp_path)}
        settings = load_settings(env)
        core = Core(settings, EngineBackend(settings), MediaFetcher(settings))
        try:
            await core.start()
            (card,) = (await core.dispatch("/v1/models"))["data"]
            assert card["backend"] == "ctranslate2"
            reply = await core.dispatch("/v1/embeddings", {"model": card["id"], "input": TEXTS})
            found = np.array([item["embedding"] for item in reply["data"]])
        finally:
            await core.stop()
        assert cosines(found, oracles.embed_oracle(folder, TEXTS)).min() >= COSINE, retrained


async def test_embedding_gemma2s_multimodal_layout_is_refused_naming_torchvision(tmp_path):
    """google/embeddinggemma-2's own layout (text and vision towers, a processor with a video
    processor) needs torchvision, which the service does not install: start-up stops with one
    line naming the model and the missing library (its text tower alone is served:
    FAMILIES["embedding_gemma2"])."""
    folder = families_2026_multimodal.build_embedding_gemma2_multimodal(
        tmp_path / "embeddinggemma-2"
    )
    settings = load_settings({"MODEL_NAMES": str(folder), "HF_HOME": str(tmp_path / "hf")})
    core = Core(settings, EngineBackend(settings), MediaFetcher(settings))
    try:
        with pytest.raises(ModelLoadError) as refused:
            await core.start()
    finally:
        await core.stop()
    (line,) = str(refused.value).splitlines()
    assert line.startswith(f"model {folder} ({folder}) could not be loaded with BACKEND=torch")
    assert "requires the Torchvision library" in line
