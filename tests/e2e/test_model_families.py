"""The model-family matrix: each family on each backend, through the real engine and core,
against its oracle (tests.oracles: sentence-transformers 6 or plain transformers, each input
alone); the matrix itself (who serves what, and why not) is tests.matrix."""

from __future__ import annotations

import logging

import pytest

from handlers.core.dispatch import Core
from handlers.engine.backend import EngineBackend
from handlers.media.fetcher import MediaFetcher
from handlers.settings import load_settings
from tests import oracles
from tests.e2e.family_checks import (
    check_adapters,
    check_embedder,
    check_image_text,
    check_reranker,
    served_id,
)
from tests.families import FAMILIES
from tests.matrix import (
    BACKENDS,
    outcome,
)

# every cell of docs/models.md's table: each family on each backend, served or fallen back
CASES = [(name, backend) for name in FAMILIES for backend in BACKENDS]


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
    core = Core(settings, EngineBackend(settings), MediaFetcher(settings))
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
