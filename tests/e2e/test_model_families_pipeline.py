"""What a family's saved module pipeline and prompts decide: its fingerprint, its default prompt."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from handlers.core.dispatch import Core
from handlers.engine.backend import EngineBackend
from handlers.media.fetcher import MediaFetcher
from handlers.settings import load_settings
from tests import oracles
from tests.e2e.family_checks import COSINE, TEXTS, cosines
from tests.families import FAMILIES


async def vectors_and_fingerprint(folder: Path, backend: str, hf_home: Path) -> tuple:
    settings = load_settings(
        {"MODEL_NAMES": str(folder), "BACKEND": backend, "HF_HOME": str(hf_home)}
    )
    core = Core(settings, EngineBackend(settings), MediaFetcher(settings))
    try:
        await core.start()
        (card,) = (await core.dispatch("/v1/models"))["data"]
        body = {"model": card["id"], "input": TEXTS}
        reply = await core.dispatch("/v1/embeddings", body)
        return np.array([item["embedding"] for item in reply["data"]]), card["fingerprint"]
    finally:
        await core.stop()


async def test_the_fingerprint_covers_the_module_pipeline(family_models, tmp_path):
    """A Dense layer changes the space: the same transformer without it, or with another
    activation, has another fingerprint; ONNX and torch, computing the same pipeline, agree."""
    source = family_models["labse-dense"]
    no_dense = shutil.copytree(source, tmp_path / "no-dense")
    modules = json.loads((no_dense / "modules.json").read_text())
    (no_dense / "modules.json").write_text(
        json.dumps([m for m in modules if not m["type"].endswith("Dense")])
    )
    identity = shutil.copytree(source, tmp_path / "identity")
    dense_config = identity / "2_Dense" / "config.json"
    config = json.loads(dense_config.read_text())
    config["activation_function"] = "torch.nn.modules.linear.Identity"
    dense_config.write_text(json.dumps(config))
    found = {
        (name, backend): await vectors_and_fingerprint(folder, backend, tmp_path / "hf")
        for name, folder in (("dense", source), ("no dense", no_dense), ("identity", identity))
        for backend in ("torch", "optimum")
    }
    for name in ("dense", "no dense", "identity"):
        (torch_vectors, torch_print), (onnx_vectors, onnx_print) = (
            found[name, "torch"],
            found[name, "optimum"],
        )
        assert cosines(torch_vectors, onnx_vectors).min() >= COSINE, name
        assert torch_print == onnx_print, name
    assert len({found[name, "torch"][1] for name in ("dense", "no dense", "identity")}) == 3


async def test_the_models_own_default_prompt_applies_unless_configured(family_models, tmp_path):
    """As sentence-transformers' encode: config_sentence_transformers.json's
    default_prompt_name prefixes every text; DEFAULT_PROMPT_NAMES=none turns it off."""
    folder = shutil.copytree(family_models["gemma3-dense"], tmp_path / "default-prompt")
    config_file = folder / "config_sentence_transformers.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "default_prompt_name": "query"}))
    prompt = FAMILIES["gemma3-dense"].prompts["query"]
    for configured, expected_prompt in ((None, prompt), ("none", "")):
        env = {"MODEL_NAMES": str(folder), "HF_HOME": str(tmp_path / "hf")}
        if configured is not None:
            env["DEFAULT_PROMPT_NAMES"] = configured
        settings = load_settings(env)
        core = Core(settings, EngineBackend(settings), MediaFetcher(settings))
        await core.start()
        try:
            (card,) = (await core.dispatch("/v1/models"))["data"]
            assert card["default_prompt_name"] == ("query" if expected_prompt else None)
            reply = await core.dispatch("/v1/embeddings", {"model": card["id"], "input": TEXTS})
            found = np.array([item["embedding"] for item in reply["data"]])
        finally:
            await core.stop()
        oracle = oracles.embed_oracle(folder, TEXTS, prompt=expected_prompt)
        assert cosines(found, oracle).min() >= COSINE, configured
