"""Fixtures of the end-to-end tests: a core over the real engines, in process."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from handlers.core.dispatch import Core
from handlers.engine.backend import EngineBackend
from tests.fake_media import FakeMedia
from tests.servers import ServiceProcess, serving


@pytest.fixture
async def make_core(make_settings, model_env):
    """Builds and starts a core over the tiny models (settings overridden by keyword);
    every core made is stopped at teardown."""
    cores: list[Core] = []

    async def make(**env: str) -> Core:
        lowered = {key.lower(): value for key, value in model_env.items()}
        settings = make_settings(**{**lowered, **env})
        core = Core(settings, EngineBackend(settings), FakeMedia())
        await core.start()
        cores.append(core)
        return core

    yield make
    for core in cores:
        await core.stop()


@pytest.fixture(scope="module")
def models_env(models) -> dict[str, str]:
    """The environment serving the module's own `models` (served id -> folder)."""
    return serving(models)


@pytest.fixture(scope="module")
def models_http(models_env) -> Iterator[httpx.Client]:
    """A client of the real service serving the module's own `models`."""
    with (
        ServiceProcess(models_env) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        yield client
