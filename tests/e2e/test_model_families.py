"""The model-family matrix: each family on each backend, through the real engine and core,
against its oracle (tests.oracles: sentence-transformers 6 or plain transformers, each input
alone); the matrix itself (who serves what, and why not) is tests.matrix."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from handlers.core.dispatch import Core
from handlers.engine.backend import EngineBackend
from handlers.engine.loading import ModelLoadError
from handlers.errors import ServiceError
from handlers.media.fetcher import ImageFetcher
from handlers.settings import load_settings
from tests import families, families_2026, oracles
from tests.families import FAMILIES
from tests.matrix import (
    BACKENDS,
    outcome,
)
from tests.tiny_models import WORDS

# every cell of docs/models.md's table: each family on each backend, served or fallen back
CASES = [(name, backend) for name in FAMILIES for backend in BACKENDS]
COSINE = 0.9999
RNG = random.Random(7)
# Many lengths: one word, a sentence, surrounding whitespace, 18 and 36 words (past CLIP's
# wrong 20-token limit), and one past every context length.
TEXTS = [
    "hello",
    "the quick brown fox jumps over the lazy dog",
    "  a red dress with   spaces \n",
    " ".join(RNG.choices(WORDS, k=18)),
    " ".join(RNG.choices(WORDS, k=36)),
    " ".join(RNG.choices(WORDS, k=300)),
]
QUERY = "which city is the capital of france"
DOCS = [
    "paris is the capital of france",
    "berlin is the capital of germany",
    "the weather today is cold",
    " ".join(RNG.choices(WORDS, k=30)),
    "a cat",
]


def served_id(name: str) -> str:
    return f"tiny/{name}"


def data_uris() -> tuple[list[str], list]:
    from PIL import Image

    pictures = [
        Image.new("RGB", (40, 40), (200, 30, 30)),
        Image.linear_gradient("L").resize((64, 48)).convert("RGB"),
        Image.new("RGB", (90, 30), (20, 160, 90)),
    ]
    uris = []
    for picture in pictures:
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        uris.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    return uris, pictures


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


async def embed(core: Core, name: str, inputs: list[str], **options) -> tuple[np.ndarray, dict]:
    body = {"model": served_id(name), "input": inputs, **options}
    reply = await core.dispatch("/v1/embeddings", body)
    return np.array([item["embedding"] for item in reply["data"]]), reply


async def check_embedder(core: Core, name: str, folder: Path) -> None:
    vectors, reply = await embed(core, name, TEXTS)
    similarity = cosines(vectors, oracles.embed_oracle(folder, TEXTS))
    print(f"{name}: cosine to the oracle, min {similarity.min():.7f}")
    assert similarity.min() >= COSINE, similarity
    assert reply["usage"]["total_tokens"] == oracles.token_count(folder, TEXTS)
    for index, text in enumerate(TEXTS):  # alone, the same as beside longer and shorter ones
        alone, _ = await embed(core, name, [text])
        assert cosines(alone, vectors[index : index + 1])[0] >= 0.99999, (index, text)
    for kind, prompt in FAMILIES[name].prompts.items():
        if kind in ("query", "document") and prompt:
            prompted, _ = await embed(core, name, TEXTS[:3], input_type=kind)
            oracle = oracles.embed_oracle(folder, TEXTS[:3], prompt=prompt)
            assert cosines(prompted, oracle).min() >= COSINE, kind
    await check_truncate_false(core, name)


async def check_adapters(core: Core, name: str, folder: Path) -> None:
    """A task (Jina's field) or prompt_name applies the model's prompt and LoRA adapter of
    that name (`retrieval.query`: the `retrieval_query` adapter), alone or in a batch; none
    applies the base weights (check_embedder); a name it has neither of is a 400 naming
    both."""
    prompts = FAMILIES[name].prompts
    for param, task in (("task", "retrieval.query"), ("prompt_name", "text-matching")):
        adapter = task.replace(".", "_").replace("-", "_")
        vectors, _ = await embed(core, name, TEXTS, **{param: task})
        oracle = oracles.embed_oracle(folder, TEXTS, prompt=prompts[task], adapter=adapter)
        similarity = cosines(vectors, oracle)
        print(f"{name} {task}: cosine to the oracle, min {similarity.min():.7f}")
        assert similarity.min() >= COSINE, (task, similarity)
        base = oracles.embed_oracle(folder, TEXTS, prompt=prompts[task])
        assert cosines(oracle, base).max() < 0.99, "the adapter changes every vector"
        alone, _ = await embed(core, name, TEXTS[:1], **{param: task})
        assert cosines(alone, vectors[:1])[0] >= 0.99999, task
    # at once: each request's adapter applies to its own inputs only
    tasks = ["retrieval.query", "retrieval.passage", None, "retrieval.query"]
    replies = await asyncio.gather(*(embed(core, name, TEXTS, task=task) for task in tasks))
    for task, (vectors, _) in zip(tasks, replies, strict=True):
        adapter = task and task.replace(".", "_")
        oracle = oracles.embed_oracle(folder, TEXTS, prompts.get(task or "", ""), adapter)
        assert cosines(vectors, oracle).min() >= COSINE, task
    with pytest.raises(ServiceError) as refused:
        await embed(core, name, TEXTS[:1], task="summarization")
    assert refused.value.code == "unknown_prompt"
    assert "retrieval_query" in refused.value.message


async def check_image_text(core: Core, name: str, folder: Path) -> None:
    vectors, reply = await embed(core, name, TEXTS, modality="text")
    similarity = cosines(vectors, oracles.image_text_oracle(folder, texts=TEXTS))
    print(f"{name}: text cosine to the oracle, min {similarity.min():.7f}")
    assert similarity.min() >= COSINE, similarity
    assert reply["usage"]["total_tokens"] == oracles.token_count(folder, TEXTS)
    for index, text in enumerate(TEXTS):
        alone, _ = await embed(core, name, [text], modality="text")
        assert cosines(alone, vectors[index : index + 1])[0] >= 0.99999, (index, text)
    uris, pictures = data_uris()
    images, _ = await embed(core, name, uris, modality="image")
    similarity = cosines(images, oracles.image_text_oracle(folder, images=pictures))
    print(f"{name}: image cosine to the oracle, min {similarity.min():.7f}")
    assert similarity.min() >= COSINE, similarity
    await check_truncate_false(core, name, modality="text")


async def check_truncate_false(core: Core, name: str, **options) -> None:
    """truncate=false counts with the model's tokenizer: what fits passes, the rest is 413."""
    await embed(core, name, TEXTS[:2], truncate=False, **options)
    with pytest.raises(ServiceError) as refused:
        await embed(core, name, [TEXTS[1], TEXTS[-1]], truncate=False, **options)
    assert refused.value.code == "input_too_long"
    assert refused.value.message.startswith("input[1] has ")


async def check_reranker(core: Core, name: str, folder: Path) -> None:
    query, docs = QUERY, DOCS
    if name == "qwen3-reranker":  # as its model card formats the pair
        query = families.qwen3_reranker_query("Given a web search query, retrieve passages", QUERY)
        docs = [families.qwen3_reranker_document(doc) for doc in DOCS]
    body = {"model": served_id(name), "query": query, "documents": docs, "raw_scores": True}
    reply = await core.dispatch("/v1/rerank", body)
    scores = [r["relevance_score"] for r in sorted(reply["results"], key=lambda r: r["index"])]
    expected = oracles.rerank_scores(folder, query, docs, raw_scores=True)
    print(f"{name}: largest logit difference {np.abs(np.subtract(scores, expected)).max():.2e}")
    assert np.allclose(scores, expected, atol=1e-4, rtol=1e-4), (scores, expected)
    assert reply["usage"]["total_tokens"] == oracles.token_count(folder, docs, query=query)


@pytest.mark.parametrize(("name", "backend"), CASES, ids=[f"{n}-{b}" for n, b in CASES])
async def test_family_on_backend(family_models, tmp_path, caplog, name, backend):
    family, folder = FAMILIES[name], family_models[name]
    settings = load_settings(
        {
            "MODEL_NAMES": str(folder),
            "SERVED_MODEL_NAMES": served_id(name),
            "BACKEND": backend,
            "HF_HOME": str(tmp_path),
        }
    )
    core = Core(settings, EngineBackend(settings), ImageFetcher(settings))
    try:
        with caplog.at_level(logging.INFO):
            await core.start()
        (card,) = (await core.dispatch("/v1/models"))["data"]
        runs_on, reason = outcome(name, backend)
        assert card["backend"] == runs_on
        if reason is not None:
            line = f"model {served_id(name)}: {reason}"
            assert any(line in r.getMessage() for r in caplog.records), caplog.text
            assert "serving it with BACKEND=torch" in caplog.text
        assert card["max_input_tokens"] == family.context_length
        assert card["max_input_tokens"] == oracles.context_length(folder)
        if family.kind == "rerank":
            await check_reranker(core, name, folder)
            return
        assert card["dimensions"] == family.dim
        if family.kind == "image-text":
            await check_image_text(core, name, folder)
            return
        assert card["pooling"] == family.pooling
        await check_embedder(core, name, folder)
        if family.adapters:
            assert card["adapters"] == sorted(family.adapters)
            await check_adapters(core, name, folder)
    finally:
        await core.stop()


async def vectors_and_fingerprint(folder: Path, backend: str, hf_home: Path) -> tuple:
    settings = load_settings(
        {"MODEL_NAMES": str(folder), "BACKEND": backend, "HF_HOME": str(hf_home)}
    )
    core = Core(settings, EngineBackend(settings), ImageFetcher(settings))
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
        core = Core(settings, EngineBackend(settings), ImageFetcher(settings))
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
    core = Core(settings, EngineBackend(settings), ImageFetcher(settings))
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
        core = Core(settings, EngineBackend(settings), ImageFetcher(settings))
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
    folder = families_2026.build_embedding_gemma2_multimodal(tmp_path / "embeddinggemma-2")
    settings = load_settings({"MODEL_NAMES": str(folder), "HF_HOME": str(tmp_path / "hf")})
    core = Core(settings, EngineBackend(settings), ImageFetcher(settings))
    try:
        with pytest.raises(ModelLoadError) as refused:
            await core.start()
    finally:
        await core.stop()
    (line,) = str(refused.value).splitlines()
    assert line.startswith(f"model {folder} ({folder}) could not be loaded with BACKEND=torch")
    assert "requires the Torchvision library" in line
