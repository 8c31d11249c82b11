"""The HTTP apps over the operation table: OpenAI-shaped 404/405, OpenAPI, disconnects."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount

from handlers.api.http import OPENAPI_PATH, RootRoutes, V1App, mounted_path
from handlers.core.dispatch import Core
from handlers.core.operations import Operation, mount_prefixes, root_paths
from handlers.core.table import OPERATIONS
from runpod_adapter.handler import ACCEPTED_SHAPES, accepted_shapes, handle
from tests.fake_media import FakeMedia
from tests.fakes import FakeBackend


def mounted(
    make_settings, backend: FakeBackend | None = None, operations=None, **env: str
) -> Starlette:
    """An app per prefix of the table mounted under a parent app, as BentoML mounts them,
    and the root paths through RootRoutes, as the service serves them."""
    core = Core(make_settings(**env), backend or FakeBackend(), FakeMedia(), operations)
    apps = [V1App(prefix, lambda: core) for prefix in mount_prefixes(core.operations)]
    root = V1App("", lambda: core)
    paths = frozenset(root_paths(core.operations))
    return Starlette(
        routes=[Mount(app.prefix, app=app) for app in apps],
        middleware=[Middleware(RootRoutes, root=root, paths=paths)],
    )


async def send(app: Starlette, method: str, path: str, **kwargs) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)


async def test_routes_answer_through_the_core(make_settings):
    app = mounted(make_settings)
    ok = await send(app, "POST", "/v1/embeddings", json={"model": "embedder", "input": ["a"]})
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
    assert len(ok.json()["data"]) == 1
    models = await send(app, "GET", "/v1/models")
    assert {m["id"] for m in models.json()["data"]} == {
        "embedder",
        "reranker",
        "clip",
        "splade",
        "sentiment",
        "nli",
    }
    missing = await send(app, "POST", "/v1/embeddings", json={"model": "nope", "input": "a"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"  # the message: test_core


ROUTES = [(op.method, path) for op in OPERATIONS for path in op.paths] + [("GET", OPENAPI_PATH)]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_wrong_method_is_405_with_allow(make_settings, method, path):
    wrong = "GET" if method == "POST" else "POST"
    reply = await send(mounted(make_settings), wrong, path)
    allowed = "GET, POST" if path == "/" else method  # GET /: the API page
    assert reply.status_code == 405 and reply.headers["allow"] == allowed
    assert reply.json()["error"]["code"] == "405"


async def test_unknown_paths_and_bad_bodies_are_openai_errors(make_settings):
    app = mounted(make_settings, max_request_bytes="100")
    unknown = await send(app, "POST", "/v1/chat/completions", json={})
    assert unknown.status_code == 404 and "Not Found: /v1/chat/completions" in unknown.text
    bad = await send(app, "POST", "/v1/embeddings", content=b"{not json")
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]
    big = await send(app, "POST", "/v1/embeddings", json={"input": "x" * 200})
    assert big.status_code == 413 and "MAX_REQUEST_BYTES" in big.json()["error"]["message"]


async def test_the_openapi_document_is_built_from_the_schemas(make_settings):
    spec = (await send(mounted(make_settings), "GET", "/v1/openapi.json")).json()
    assert set(spec["paths"]) == {
        path for op in OPERATIONS for path in op.paths
    }  # /v2/rerank included
    assert spec["servers"] == [{"url": "/"}]  # the paths are the real ones
    body = spec["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"]
    # every model /v1/embeddings serves: dense, image-text and sparse; no classifier
    assert body["schema"]["properties"]["model"]["enum"] == ["embedder", "clip", "splade"]
    score = spec["paths"]["/v1/score"]["post"]["requestBody"]["content"]["application/json"]
    assert score["schema"]["properties"]["model"]["enum"] == ["embedder", "reranker", "clip"]
    classify = spec["paths"]["/v1/classify"]["post"]["requestBody"]["content"]["application/json"]
    assert classify["schema"]["properties"]["model"]["enum"] == ["sentiment", "nli"]
    assert body["schema"]["properties"]["dimensions"]["anyOf"][0]["maximum"] == 8
    new_fields = {"truncate", "truncation_direction", "prompt_name", "input_type"}
    assert new_fields | {"embedding_type", "normalize"} <= set(body["schema"]["properties"])
    schemas = spec["components"]["schemas"]
    assert "fingerprint" in schemas["EmbeddingsResponse"]["properties"]
    card = {"max_input_tokens", "pooling", "normalized", "prompts", "revision", "fingerprint"}
    assert card | {"dtype", "input_types"} <= set(schemas["ModelCard"]["properties"])
    for path in ("/v1/rerank", "/v2/rerank"):
        rerank = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert rerank["schema"]["properties"]["model"]["enum"] == ["reranker"]
    refs = [
        op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        for item in spec["paths"].values()
        for op in item.values()
        if op["operationId"] != "page"  # GET /: the API page, HTML
    ]
    assert all(ref.rsplit("/", 1)[1] in spec["components"]["schemas"] for ref in refs)


@pytest.mark.parametrize(
    ("path", "root", "below"),
    [
        ("/v1/embeddings", "/v1", "/embeddings"),
        ("/v1", "/v1", ""),
        ("/v10/embeddings", "/v1", "/v10/embeddings"),  # another mount, not below /v1
        ("/embeddings", "", "/embeddings"),
    ],
)
def test_the_path_below_the_mount(path, root, below):
    assert mounted_path({"path": path, "root_path": root}) == below


async def test_every_example_body_names_a_served_model_and_runs(make_settings):
    """The OpenAPI examples (the API page's forms) run as they are: 2xx on every route."""
    app = mounted(make_settings)
    spec = (await send(app, "GET", "/v1/openapi.json")).json()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            if "example" not in content:  # no body, or no served model can run it
                assert "requestBody" not in op or "none has" in op["description"]
                continue
            example = content["example"]
            model = content["schema"].get("properties", {}).get("model", {})
            assert example.get("model") in model.get("enum", [example.get("model")])
            reply = await send(app, method.upper(), path, json=example)
            assert reply.status_code == 200, (path, reply.text)


async def test_without_a_reranker_the_rerank_routes_say_none_is_served(make_settings):
    backend = FakeBackend()
    backend._models.pop("reranker")
    spec = (await send(mounted(make_settings, backend), "GET", "/v1/openapi.json")).json()
    for path in ("/v1/rerank", "/rerank", "/v2/rerank"):
        op = spec["paths"][path]["post"]
        assert "example" not in op["requestBody"]["content"]["application/json"]
        assert op["description"] == (
            "No model served here can run this operation (none has the rerank capability)."
        )
    embed = spec["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]
    assert embed["application/json"]["example"]["model"] == "embedder"


class SlowBackend(FakeBackend):
    """embed() waits until cancelled; records that it was."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.cancelled = False

    async def embed(self, ticket, items, key=None, lengths=None):
        self.started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return await super().embed(ticket, items)


async def test_a_client_that_disconnects_cancels_its_request(make_settings):
    backend = SlowBackend()
    core = Core(make_settings(), backend, FakeMedia())
    app = V1App(core=lambda: core)
    body = b'{"model": "embedder", "input": ["a"]}'
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    gone = asyncio.Event()

    async def receive():
        if messages:
            return messages.pop(0)
        await gone.wait()
        return {"type": "http.disconnect"}

    sent: list[dict] = []

    async def send_(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/embeddings",
        "headers": [],
        "root_path": "",
    }
    call = asyncio.ensure_future(app(scope, receive, send_))
    await asyncio.wait_for(backend.started.wait(), 5)
    gone.set()
    await asyncio.wait_for(call, 5)
    assert backend.cancelled
    assert backend.admissions == backend.releases == [1]  # released on cancel


async def echo(core, body):
    """A handler declared by a test: the body back, with the served model ids."""
    return {"echo": body, "models": sorted(core.backend.models())}


class EchoReply(BaseModel):
    echo: dict
    models: list[str]


class EchoRequest(BaseModel):
    text: str


ECHO = Operation("/v3/echo", "POST", echo, "Echo the body.", EchoReply, EchoRequest)


async def test_one_declaration_adds_a_route_on_http_runpod_and_openapi(make_settings):
    operations = (*OPERATIONS, ECHO)
    app = mounted(make_settings, operations=operations)
    reply = await send(app, "POST", "/v3/echo", json={"text": "hi"})
    assert reply.json() == {
        "echo": {"text": "hi"},
        "models": ["clip", "embedder", "nli", "reranker", "sentiment", "splade"],
    }
    spec = (await send(app, "GET", "/v1/openapi.json")).json()
    assert spec["paths"]["/v3/echo"]["post"]["summary"] == "Echo the body."
    core = Core(make_settings(), FakeBackend(), FakeMedia(), operations)
    job = {"input": {"openai_route": "/v3/echo", "openai_input": {"text": "hi"}}}
    assert (await handle(job, core))[0]["echo"] == {"text": "hi"}
    assert "/v3/echo" in (await handle({"input": {"openai_route": "/v3/x"}}, core))["message"]
    assert ACCEPTED_SHAPES != accepted_shapes({op.path: op.method for op in operations})


async def test_an_app_serves_whichever_core_is_running_and_503_before_one_is(make_settings):
    running: list[Core] = []
    app = Starlette(
        routes=[Mount("/v1", app=V1App("/v1", lambda: running[-1] if running else None))]
    )
    starting = await send(app, "GET", "/v1/models")
    assert starting.status_code == 503 and starting.json()["error"]["type"] == (
        "service_unavailable_error"
    )
    first, second = FakeBackend(), FakeBackend()
    second.loaded = False  # a second instance whose models are still loading
    running.append(Core(make_settings(), first, FakeMedia()))
    assert (await send(app, "GET", "/v1/models")).status_code == 200
    assert len((await send(app, "GET", OPENAPI_PATH)).json()["paths"]) > 0
    running.append(Core(make_settings(), second, FakeMedia()))
    assert (await send(app, "GET", "/v1/models")).status_code == 503  # the new one's state
