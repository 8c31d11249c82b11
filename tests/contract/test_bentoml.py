"""BentoML, as service.py and handlers/api/bentoml_server.py use it, at the pinned version."""

from __future__ import annotations

import inspect
import signal
from typing import Any, get_args, get_type_hints

import bentoml
import pytest
from starlette.testclient import TestClient

from handlers.api.bentoml_server import in_worker
from tests.contract.pins import assert_pinned


def test_the_installed_version_is_the_pin():
    assert_pinned("bentoml")
    assert_pinned("kantoku")  # the arbiter: BentoML's fork of circus, which comes with it


def _config_keys(*path: str) -> set[str]:
    """The keys BentoML's service config schema declares at `path` (the TypedDicts that
    `@bentoml.service(**config)` is typed with)."""
    schema: Any = get_args(get_type_hints(bentoml.service, include_extras=True)["kwargs"])[0]
    for key in path:
        schema = get_type_hints(schema)[key]
    return set(get_type_hints(schema))


def test_the_service_config_has_the_keys_service_py_sets():
    assert {"traffic", "workers", "http", "logging", "metrics", "tracing"} <= _config_keys()
    assert {"timeout", "max_concurrency"} <= _config_keys("traffic")
    assert {"host", "port"} <= _config_keys("http")
    assert "enabled" in _config_keys("logging", "access")
    assert "enabled" in _config_keys("metrics")
    assert "excluded_urls" in _config_keys("tracing")


def test_the_decorators_and_service_methods_take_what_we_pass():
    api = inspect.signature(bentoml.api).parameters
    assert {"route", "batchable", "max_batch_size", "max_latency_ms"} <= set(api)
    assert "name" in inspect.signature(bentoml.service).parameters
    assert callable(bentoml.on_startup) and callable(bentoml.on_shutdown)
    import service

    served: Any = service.EmbeddingService
    assert list(inspect.signature(served.mount_asgi_app).parameters)[:2] == ["app", "path"]
    middleware = inspect.signature(served.add_asgi_middleware).parameters
    assert [p.kind for p in middleware.values()][-1] is inspect.Parameter.VAR_KEYWORD


def test_a_worker_that_exits_is_respawned_unless_containerized(monkeypatch):
    """Why a failed start stops the arbiter itself (handlers/api/bentoml_server.py)."""
    from bentoml.serving import create_watcher, running_inside_container

    def respawns(**env: str) -> bool:
        for name in ("BENTOML_CONTAINERIZED", "BENTOCLOUD_DEPLOYMENT_URL"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        running_inside_container.cache_clear()  # read once per process, cached
        try:
            return bool(create_watcher(name="probe", args=[]).respawn)
        finally:
            running_inside_container.cache_clear()

    assert respawns() is True
    assert respawns(BENTOML_CONTAINERIZED="true") is False


def test_the_arbiter_stops_gracefully_on_sigterm_and_this_process_is_no_worker():
    from circus.sighandler import SysHandler

    assert signal.SIGTERM in SysHandler.SIGNALS
    assert bentoml.server_context.worker_index is None  # set by BentoML in its workers only
    assert in_worker() is False


class _Recorder:
    """A middleware in Starlette's shape, `cls(app, **options)`, that records its name."""

    seen: list[str] = []

    def __init__(self, app: Any, name: str) -> None:
        self.app, self.name = app, name

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append(self.name)
        await self.app(scope, receive, send)


async def _mounted(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = f"{scope['root_path']} {scope['path']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@bentoml.service(name="contract-probe", workers=1, metrics={"enabled": False})
class _Probe:
    """One instance, built at start-up, runs the hooks and answers the health routes."""

    def __init__(self) -> None:
        self.started = False

    @bentoml.on_startup
    async def start(self) -> None:
        self.started = True

    def __is_ready__(self) -> bool:
        return self.started

    def __is_alive__(self) -> bool:
        return False

    @bentoml.api(route="/batch/echo", batchable=True, max_batch_size=4, max_latency_ms=1000)
    async def echo(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return requests


PROBE: Any = _Probe
PROBE.mount_asgi_app(_mounted, path="/v1")
PROBE.add_asgi_middleware(_Recorder, name="outer")
PROBE.add_asgi_middleware(_Recorder, name="inner")


@pytest.fixture(scope="module")
def probe() -> Any:
    with TestClient(PROBE.to_asgi()) as client:
        yield client


def test_hooks_health_routes_and_batchable_apis(probe):
    assert probe.get("/readyz").status_code == 200  # the startup hook ran on the instance
    assert probe.get("/livez").status_code == 503
    reply = probe.post("/batch/echo", json={"requests": [{"a": 1}, {"b": 2}]})
    assert reply.json() == [{"a": 1}, {"b": 2}]
    assert probe.get("/metrics").status_code == 404  # metrics off: the route is ours to add


def test_a_mounted_app_sees_its_mount_as_root_path_and_middlewares_nest_in_order(probe):
    _Recorder.seen.clear()
    assert probe.get("/v1/embeddings").text == "/v1 /v1/embeddings"
    assert _Recorder.seen == ["outer", "inner"]  # the first added is the outermost
