"""onnx.plan: which models go to ONNX, with what pooling, exported once into the cache by
torch.onnx, each graph checked against torch on the probe before it is used."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from handlers.engine import onnx_graph
from handlers.engine import onnx_plan as onnx
from handlers.settings import load_settings
from handlers.settings_error import SettingsError
from tests.conftest import CLIP_ID, EMBED_ID, RERANK_ID

pytestmark = pytest.mark.slow  # bento builds / ONNX exports


def test_embedder_is_exported_once_with_its_pooling(tiny_models, tmp_path: Path):
    first = onnx.plan(str(tiny_models[EMBED_ID]), EMBED_ID, "auto", tmp_path)
    assert isinstance(first, onnx.OnnxPlan)
    assert (first.pooling, first.precision) == ("mean", "fp32")
    assert [p.name for p in first.folder.glob("*.onnx")] == ["model.onnx"]
    stamp = (first.folder / "model.onnx").stat().st_mtime_ns
    again = onnx.plan(str(tiny_models[EMBED_ID]), EMBED_ID, "auto", tmp_path)
    assert again == first
    assert (again.folder / "model.onnx").stat().st_mtime_ns == stamp
    assert not list(first.folder.parent.glob(".export-*"))  # no scratch left behind


def test_the_graph_takes_the_tokenizers_inputs_and_gives_last_hidden_state_on_any_shape(
    tiny_models, tmp_path: Path
):
    import onnx as onnx_format

    plan = onnx.plan(str(tiny_models[EMBED_ID]), EMBED_ID, "auto", tmp_path)
    graph = onnx_format.load(str(plan.folder / "model.onnx")).graph
    dims = {
        value.name: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
        for value in [*graph.input, *graph.output]
    }
    assert dims == {
        "input_ids": ["batch", "sequence"],
        "attention_mask": ["batch", "sequence"],
        "token_type_ids": ["batch", "sequence"],
        "last_hidden_state": ["batch", "sequence", 32],
    }
    served = sorted(p.name for p in plan.folder.iterdir())
    assert served == ["config.json", "model.onnx", "tokenizer.json", "tokenizer_config.json"]


def test_each_export_is_checked_against_torch_on_the_probe(tiny_models, tmp_path: Path, caplog):
    with caplog.at_level(logging.INFO, logger="handlers.engine.onnx_export"):
        plan = onnx.plan(str(tiny_models[EMBED_ID]), EMBED_ID, "auto", tmp_path)
    assert isinstance(plan, onnx.OnnxPlan)
    (line,) = [r.getMessage() for r in caplog.records if "against torch on the probe" in r.message]
    cosines = [float(c) for c in line.split("cosines ")[1].split(" (")[0].split(", ")]
    assert len(cosines) == len(onnx_graph.PROBE_TEXTS) == 3
    assert min(cosines) >= onnx_graph.MIN_COSINE
    # the exporter's own chatter (hundreds of rewrite records an export) is left out
    assert not [r for r in caplog.records if r.name.startswith(("onnxscript", "onnx_ir"))]


def _bert(folder: Path):
    """The tiny embedder's bare transformer and tokenizer, as the export loads them."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(folder)


def test_the_probe_tells_a_graph_that_differs_from_its_torch_model(tiny_models, tmp_path: Path):
    import torch

    model, tokenizer = _bert(tiny_models[EMBED_ID])
    names = ("input_ids", "attention_mask", "token_type_ids")
    probe = onnx_graph.probe_features(tokenizer, names, onnx_graph.PROBE_TEXTS, 128)
    assert probe["attention_mask"].sum(1).tolist()[0] < probe["attention_mask"].shape[1]
    graph = tmp_path / "model.onnx"
    onnx_graph.export_graph(
        model, onnx_graph.probe_features(tokenizer, names, onnx_graph.PROBE_TEXTS[:2], 128), graph
    )
    same = onnx_graph.probe_cosines(model, probe, graph)
    assert min(same) >= onnx_graph.MIN_COSINE and onnx_graph.probe_reason(same, "bert") is None
    with torch.no_grad():  # the torch model moves on (its last LayerNorm flips the output)
        model.encoder.layer[1].output.LayerNorm.weight.mul_(-1)
    differs = onnx_graph.probe_cosines(model, probe, graph)
    assert max(differs) < 0
    reason = onnx_graph.probe_reason(differs, "bert")
    assert reason == (
        f"the ONNX export of bert differs from torch: cosine {min(differs):.6f} on the probe"
    )
    nan = onnx_graph.probe_reason([1.0, float("nan"), 1.0], "bert")
    assert nan == "the ONNX export of bert differs from torch: cosine nan on the probe"


def test_an_export_refused_by_the_probe_is_not_cached(tiny_models, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(onnx_graph, "MIN_COSINE", 1.5)  # no graph can pass: every export is refused
    reason = onnx.plan(str(tiny_models[EMBED_ID]), EMBED_ID, "auto", tmp_path)
    assert reason == "the ONNX export of bert differs from torch: cosine 1.000000 on the probe"
    (model_dir,) = tmp_path.iterdir()
    assert sorted(p.name for p in model_dir.iterdir()) == [".export.lock"]  # no fp32, no scratch


def _longformer(source: Path, folder: Path) -> Path:
    """The tiny embedder's pipeline and tokenizer over a random LongformerModel, whose
    sliding-window chunking torch.export cannot trace with a dynamic sequence length."""
    from transformers import LongformerConfig, LongformerModel

    folder = shutil.copytree(source, folder)
    (folder / "model.safetensors").unlink()
    vocab = json.loads((source / "config.json").read_text())["vocab_size"]
    config = LongformerConfig(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        attention_window=4,
        max_position_embeddings=140,
        pad_token_id=0,
    )
    LongformerModel(config).save_pretrained(folder)
    return folder


def test_a_model_type_the_exporter_fails_on_stays_on_torch(tiny_models, tmp_path: Path):
    folder = _longformer(tiny_models[EMBED_ID], tmp_path / "longformer")
    reason = onnx.plan(str(folder), "longformer", "auto", tmp_path / "cache")
    assert reason.startswith("the ONNX exporter failed on longformer: "), reason
    assert "\n" not in reason and "\x1b" not in reason and len(reason) < 260
    (model_dir,) = (tmp_path / "cache").iterdir()
    assert sorted(p.name for p in model_dir.iterdir()) == [".export.lock"]


def test_int8_folder_holds_only_the_quantised_file(tiny_models, tmp_path: Path):
    plan = onnx.plan(str(tiny_models[EMBED_ID]), EMBED_ID, "int8", tmp_path)
    assert plan.precision == "int8"
    assert [p.name for p in plan.folder.glob("*.onnx")] == ["model_quantized.onnx"]


def test_cls_pooling_and_max_length_come_from_the_sentence_transformers_config(
    tiny_models, tmp_path: Path
):
    folder = shutil.copytree(tiny_models[EMBED_ID], tmp_path / "cls-model")
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(config))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 40}))
    plan = onnx.plan(str(folder), "cls-model", "auto", tmp_path / "cache")
    assert plan.pooling == "cls"
    served = json.loads((plan.folder / "config.json").read_text())
    assert served["max_position_embeddings"] == 40


def test_unsupported_pooling_stays_on_torch(tiny_models, tmp_path: Path):
    folder = shutil.copytree(tiny_models[EMBED_ID], tmp_path / "max-model")
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_max_tokens=True)
    pooling.write_text(json.dumps(config))
    reason = onnx.plan(str(folder), "max-model", "auto", tmp_path / "cache")
    where = "module 1, sentence_transformers.models.Pooling"
    assert reason == f"the ONNX path has no max pooling ({where})"
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("model_id", "reason"),
    [
        (RERANK_ID, "ONNX export covers text embedders only, not rerankers"),
        (CLIP_ID, "ONNX export covers text embedders only, not image-text models"),
    ],
)
def test_rerankers_and_clip_stay_on_torch(tiny_models, tmp_path: Path, model_id, reason):
    assert onnx.plan(str(tiny_models[model_id]), model_id, "auto", tmp_path) == reason


def test_optimum_refuses_dtypes_onnx_cannot_serve():
    with pytest.raises(SettingsError) as info:
        load_settings({"BACKEND": "optimum", "DTYPES": "fp16"})
    assert "BACKEND=optimum" in str(info.value) and "int8" in str(info.value)
    assert load_settings({"BACKEND": "optimum", "DTYPES": "int8"}).dtypes == ("int8",)


def test_cache_root_follows_hf_home(tmp_path: Path):
    assert onnx.cache_root(str(tmp_path)) == tmp_path / "onnx"


def test_a_scratch_folder_left_by_a_killed_export_is_removed(tiny_models, tmp_path: Path):
    source = str(tiny_models[EMBED_ID])
    model_dir = onnx.plan(source, EMBED_ID, "auto", tmp_path).folder.parent
    shutil.rmtree(model_dir / "fp32")
    left = model_dir / ".export-killed" / "model"
    left.mkdir(parents=True)
    (left / "model.onnx").write_bytes(b"half")
    plan = onnx.plan(source, EMBED_ID, "auto", tmp_path)
    assert not list(model_dir.glob(".export-*"))
    assert (plan.folder / "model.onnx").stat().st_size > 4


@pytest.mark.parametrize("package", onnx.EXPORTER_PACKAGES)
def test_the_cache_key_changes_with_an_exporter_version(tiny_models, monkeypatch, package):
    source = tiny_models[EMBED_ID]
    before = onnx._digest(source)
    real = onnx.version
    monkeypatch.setattr(onnx, "version", lambda name: real(name) + "+1" * (name == package))
    assert onnx._digest(source) != before


def test_int8_silences_only_the_quantisers_info_records(
    tiny_models, monkeypatch, caplog, tmp_path: Path
):
    import onnxruntime.quantization

    quantize = onnxruntime.quantization.quantize_dynamic
    seen: list[bool] = []

    def observed(*args, **kwargs):
        logging.getLogger("elsewhere").info("another thread's record")
        logging.info("a root record from outside the quantiser")
        seen.append(logging.root.manager.disable == logging.NOTSET)
        return quantize(*args, **kwargs)

    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", observed)
    with caplog.at_level(logging.INFO):
        onnx.plan(str(tiny_models[EMBED_ID]), EMBED_ID, "int8", tmp_path)
    assert seen == [True]
    messages = [r.getMessage() for r in caplog.records]
    assert "another thread's record" in messages
    assert "a root record from outside the quantiser" in messages
    quantiser = str(Path(onnxruntime.quantization.__file__).parent)
    from_quantiser = [r for r in caplog.records if r.pathname.startswith(quantiser)]
    assert all(r.levelno >= logging.WARNING for r in from_quantiser)
    assert logging.root.filters == []


def _with_modules(source: Path, folder: Path, extra: list[tuple[str, str, dict]]) -> Path:
    """A copy of `source` whose pipeline has `extra` modules (type, path, config) inserted
    after Pooling, before Normalize."""
    folder = shutil.copytree(source, folder)
    listing = json.loads((folder / "modules.json").read_text())
    added = []
    for kind, path, config in extra:
        (folder / path).mkdir()
        (folder / path / "config.json").write_text(json.dumps(config))
        added.append({"name": path, "path": path, "type": f"sentence_transformers.models.{kind}"})
    listing = [*listing[:2], *added, *listing[2:]]
    for index, entry in enumerate(listing):
        entry["idx"] = index
    (folder / "modules.json").write_text(json.dumps(listing))
    return folder


def _dense(activation: str) -> dict:
    return {"in_features": 32, "out_features": 32, "bias": True, "activation_function": activation}


def test_dense_layers_are_planned_in_order(tiny_models, tmp_path: Path):
    tanh, identity = "torch.nn.modules.activation.Tanh", "torch.nn.modules.linear.Identity"
    folder = _with_modules(
        tiny_models[EMBED_ID],
        tmp_path / "dense",
        [("Dense", "2_Dense", _dense(tanh)), ("Dense", "3_Dense", _dense(identity))],
    )
    plan = onnx.plan(str(folder), "dense", "auto", tmp_path / "cache")
    assert isinstance(plan, onnx.OnnxPlan), plan
    assert plan.dense == (folder / "2_Dense", folder / "3_Dense")


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (
            [("Dense", "2_Dense", _dense("torch.nn.modules.activation.GELU"))],
            "the ONNX path has no torch.nn.modules.activation.GELU activation "
            "(module 2, sentence_transformers.models.Dense)",
        ),
        (
            [("LayerNorm", "2_LayerNorm", {"dimension": 32})],
            "the ONNX path computes Transformer, Pooling, Dense and a final Normalize modules "
            "only, not module 2, sentence_transformers.models.LayerNorm",
        ),
    ],
)
def test_a_module_the_runner_cannot_compute_keeps_the_model_on_torch(
    tiny_models, tmp_path: Path, extra, reason
):
    folder = _with_modules(tiny_models[EMBED_ID], tmp_path / "odd", extra)
    assert onnx.plan(str(folder), "odd", "auto", tmp_path / "cache") == reason
    assert not (tmp_path / "cache").exists()


def test_pooling_that_leaves_the_prompt_out_stays_on_torch(tiny_models, tmp_path: Path):
    folder = shutil.copytree(tiny_models[EMBED_ID], tmp_path / "instructor")
    pooling = folder / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps({**json.loads(pooling.read_text()), "include_prompt": False}))
    reason = onnx.plan(str(folder), "instructor", "auto", tmp_path / "cache")
    assert reason == (
        "the ONNX path pools over the whole input, prompt included "
        "(module 1, sentence_transformers.models.Pooling)"
    )


def test_any_model_with_a_vision_config_stays_off_the_onnx_text_path(tmp_path: Path):
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "siglip",
                "architectures": ["SiglipModel"],
                "vision_config": {"image_size": 32},
            }
        )
    )
    reason = onnx.plan(str(tmp_path), "siglip", "auto", tmp_path / "cache")
    assert reason == "ONNX export covers text embedders only, not image-text models"


def test_a_pipeline_without_pooling_stays_on_torch(tiny_models, tmp_path: Path):
    folder = shutil.copytree(tiny_models[EMBED_ID], tmp_path / "no-pooling")
    listing = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps(listing[:1]))
    reason = onnx.plan(str(folder), "no-pooling", "auto", tmp_path / "cache")
    assert reason == (
        "the ONNX path needs a Pooling module after the Transformer; this pipeline has none"
    )
