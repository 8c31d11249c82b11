"""BACKEND=optimum end to end: a plain model folder exported on first start (torch.onnx, checked
against torch), served over HTTP; an export the probe refuses is served on torch."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from handlers.engine import onnx_graph
from handlers.engine.backend import EngineBackend
from tests.conftest import CLIP_ID, EMBED_ID, RERANK_ID
from tests.imagehost import png_bytes
from tests.oracles import assert_rerank_matches
from tests.servers import ROOT, ServiceProcess

TEXTS = ["a red dress", "blue running shoes for the trail", "x " * 300, "ok"]


@pytest.fixture(scope="module")
def onnx_server(model_env, tmp_path_factory) -> Iterator[ServiceProcess]:
    cache = tmp_path_factory.mktemp("hf-home")
    with ServiceProcess({**model_env, "BACKEND": "optimum", "HF_HOME": str(cache)}) as proc:
        proc.cache = cache
        yield proc


def embed(url: str, model: str, texts: list[str]) -> np.ndarray:
    response = httpx.post(
        f"{url}/v1/embeddings",
        json={"model": model, "input": texts, "encoding_format": "float"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return np.array([item["embedding"] for item in response.json()["data"]])


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_optimum_embeddings_match_torch(server, onnx_server):
    torch_vectors = embed(server.url, EMBED_ID, TEXTS)
    onnx_vectors = embed(onnx_server.url, EMBED_ID, TEXTS)
    assert cosines(torch_vectors, onnx_vectors).min() >= 0.9999


def test_tokenize_on_onnx_agrees_with_torch_and_with_usage(server, onnx_server):
    texts = ["a red dress", "blue running shoes for the trail"]
    body = {"model": EMBED_ID, "input": texts}
    onnx = httpx.post(f"{onnx_server.url}/v1/tokenize", json=body, timeout=30).json()
    torch = httpx.post(f"{server.url}/v1/tokenize", json=body, timeout=30).json()
    assert onnx["data"] == torch["data"]
    usage = httpx.post(f"{onnx_server.url}/v1/embeddings", json=body, timeout=30).json()
    assert sum(d["count"] for d in onnx["data"]) == usage["usage"]["total_tokens"]


def test_export_lands_in_the_model_cache_and_models_report_their_backend(onnx_server):
    (exported,) = onnx_server.cache.glob("onnx/*/fp32/model.onnx")
    assert exported.stat().st_size > 0
    assert not list(exported.parent.glob("*.data"))  # a small model's weights: in the graph
    listed = httpx.get(f"{onnx_server.url}/v1/models", timeout=10).json()["data"]
    assert {m["id"]: m["backend"] for m in listed} == {
        EMBED_ID: "optimum",
        RERANK_ID: "torch",
        CLIP_ID: "torch",
    }
    logs = onnx_server.logs()
    assert f"model {RERANK_ID}: ONNX export covers text embedders only, not rerankers" in logs
    assert f"model {CLIP_ID}: ONNX export covers text embedders only, not image-text models" in logs


def test_rerank_and_images_keep_working_on_torch(onnx_server, tiny_models):
    body = {"model": RERANK_ID, "query": "shoes", "documents": ["a", "b", "c"]}
    ranked = httpx.post(f"{onnx_server.url}/v1/rerank", json=body, timeout=30)
    assert ranked.status_code == 200, ranked.text
    assert_rerank_matches(tiny_models[RERANK_ID], body, ranked.json()["results"])
    image = base64.b64encode(png_bytes()).decode()
    images = httpx.post(
        f"{onnx_server.url}/v1/embeddings",
        json={"model": CLIP_ID, "input": [image], "modality": "image"},
        timeout=30,
    )
    assert images.status_code == 200, images.text


# One worker of a fleet sharing a volume: import everything, wait until every worker is
# ready (so they reach plan() together), plan, then serve one input with onnxruntime.
WORKER = """
import json, logging, sys, time
from pathlib import Path
import onnxruntime, onnxscript, torch, transformers
from handlers.engine import onnx_plan as onnx
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
model, root, gate, me, workers = sys.argv[1:]
Path(gate, me).touch()
while len(list(Path(gate).iterdir())) < int(workers):
    time.sleep(0.01)
plan = onnx.plan(model, "tiny/bert-embedder", "auto", Path(root))
session = onnxruntime.InferenceSession(str(plan.folder / "model.onnx"))
names = {i.name for i in session.get_inputs()}
tokens = transformers.AutoTokenizer.from_pretrained(plan.folder)("a red dress", return_tensors="np")
(hidden,) = session.run(["last_hidden_state"], {k: v for k, v in tokens.items() if k in names})
print(json.dumps({"folder": str(plan.folder), "shape": list(hidden.shape)}))
"""


def test_workers_sharing_an_empty_cache_export_once_and_all_serve(tiny_models, tmp_path):
    gate, root = tmp_path / "gate", tmp_path / "cache"
    gate.mkdir()
    args = [str(tiny_models[EMBED_ID]), str(root), str(gate)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *args, str(i), "2"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = [worker.communicate(timeout=300) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], results
    logs = "".join(err for _, err in results)
    assert logs.count("handlers.engine.onnx_export: exporting ") == 1, logs
    replies = [json.loads(out.splitlines()[-1]) for out, _ in results]
    assert replies[0]["folder"] == replies[1]["folder"]
    assert all(reply["shape"][-1] == 32 for reply in replies)
    (exported,) = Path(replies[0]["folder"]).parent.parent.glob("*/*/model.onnx")
    assert not list(exported.parent.parent.glob(".export-*"))


async def test_int8_is_close_to_torch(make_settings, tiny_models, tmp_path):
    """Through the real engine in-process: int8 keeps the ranking signal of fp32."""
    vectors = {}
    for backend, dtype in (("torch", "auto"), ("optimum", "int8")):
        settings = make_settings(
            model_names=str(tiny_models[EMBED_ID]),
            served_model_names=EMBED_ID,
            backend=backend,
            dtypes=dtype,
            hf_home=str(tmp_path),
        )
        engine = EngineBackend(settings)
        await engine.start()
        try:
            assert engine.models()[EMBED_ID].backend == backend
            async with engine.admit(EMBED_ID, len(TEXTS)) as ticket:
                found, _ = await engine.embed(ticket, TEXTS)
            vectors[backend] = np.stack(found)
        finally:
            await engine.stop()
    assert [p.name for p in tmp_path.glob("onnx/*/int8/*.onnx")] == ["model_quantized.onnx"]
    similarity = cosines(vectors["torch"], vectors["optimum"])
    print("int8 cosine to torch on the tiny model:", similarity)
    assert similarity.min() >= 0.99


class _Records(logging.Handler):
    """The messages of one logger (Infinity's import replaces the root logger's handlers,
    caplog's among them)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_an_export_the_probe_refuses_is_served_on_torch_with_its_reason(
    make_settings, tiny_models, tmp_path, monkeypatch
):
    """Through the real engine in-process: with a threshold no graph reaches, the export is
    refused after its check, left out of the cache, and the model served on torch."""
    monkeypatch.setattr(onnx_graph, "MIN_COSINE", 1.5)
    settings = make_settings(
        model_names=str(tiny_models[EMBED_ID]),
        served_model_names=EMBED_ID,
        backend="optimum",
        dtypes="auto",
        hf_home=str(tmp_path),
    )
    records = _Records()
    loading_log = logging.getLogger("handlers.engine.loading")
    loading_log.addHandler(records)
    engine = EngineBackend(settings)
    try:
        await engine.start()
        assert engine.models()[EMBED_ID].backend == "torch"
        async with engine.admit(EMBED_ID, len(TEXTS)) as ticket:
            found, _ = await engine.embed(ticket, TEXTS)
        assert len(found) == len(TEXTS)
    finally:
        loading_log.removeHandler(records)
        await engine.stop()
    reason = "the ONNX export of bert differs from torch: cosine 1.000000 on the probe"
    assert f"model {EMBED_ID}: {reason}; serving it with BACKEND=torch" in records.messages
    assert not list(tmp_path.glob("onnx/*/fp32")) and not list(tmp_path.glob("onnx/*/.export-*"))
