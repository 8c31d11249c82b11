"""`python -m handlers.check_model`: a user's own check of a model, run as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from handlers.check_model import probe_texts
from tests.servers import ROOT


def check_model(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "handlers.check_model", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("family", "backend", "lines"),
    [
        ("labse-dense", "optimum", {"text": len(probe_texts())}),
        ("siglip", "torch", {"text": len(probe_texts()), "image": 2}),
        # transformers 5 families: a native text embedder, a multimodal pipeline
        ("nomic_bert", "torch", {"text": len(probe_texts())}),
        ("modernvbert", "torch", {"text": len(probe_texts()), "image": 2}),
    ],
)
def test_each_input_is_compared_and_the_model_passes(family_models, family, backend, lines):
    done = check_model(str(family_models[family]), "--backend", backend)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.splitlines()[-1] == "PASS"
    assert f"on {'optimum' if backend == 'optimum' else 'torch'}, max_input_tokens" in out
    for kind, count in lines.items():
        found = re.findall(rf"^{kind}\[(\d+)\] cosine (\S+)$", out, flags=re.M)
        assert [int(index) for index, _ in found] == list(range(count)), out
        assert min(float(cosine) for _, cosine in found) >= 0.9999


def test_reranker_logits_are_compared_pair_by_pair(family_models):
    done = check_model(str(family_models["qwen3-reranker"]))
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(re.findall(r"^document\[\d\] logit \S+ reference \S+$", done.stdout, re.M)) == 4
    assert done.stdout.splitlines()[-1] == "PASS"
