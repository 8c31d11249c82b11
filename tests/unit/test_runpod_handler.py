"""RunPod adapter without the SDK or engines: normalize() shapes, output and error shaping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from handlers.core.table import OPERATIONS
from handlers.errors import ErrorKind, ServiceError
from runpod_adapter.handler import ACCEPTED_SHAPES, error_output, handle, normalize

ROOT = Path(__file__).resolve().parents[2]
EMBED_BODY = {"model": "m", "input": ["a", "b"], "modality": "text"}
RERANK_BODY = {"model": "r", "query": "q", "documents": ["x", "y"]}


# ----------------------------------------------------------------------------- normalize
@pytest.mark.parametrize(
    ("job_input", "expected"),
    [
        ({"openai_route": "/v1/models"}, ("/v1/models", None)),
        ({"openai_route": "/v1/models", "openai_input": None}, ("/v1/models", None)),
        ({"openai_route": "/v1/models", "openai_input": {}}, ("/v1/models", None)),
        (
            {"openai_route": "/v1/embeddings", "openai_input": EMBED_BODY},
            ("/v1/embeddings", EMBED_BODY),
        ),
        (
            {"openai_route": "/v1/rerank", "openai_input": RERANK_BODY},
            ("/v1/rerank", RERANK_BODY),
        ),
        ({"model": "m", "input": "hi"}, ("/v1/embeddings", {"model": "m", "input": "hi"})),
        (
            {"model": "m", "input": ["u"], "modality": "image", "dimensions": 8},
            (
                "/v1/embeddings",
                {"model": "m", "input": ["u"], "modality": "image", "dimensions": 8},
            ),
        ),
        (  # native rerank jobs: the RunPod Infinity worker's reply, documents as sent
            {"model": "r", "query": "q", "docs": ["x"], "return_docs": True},
            ("/rerank", {"model": "r", "query": "q", "docs": ["x"], "return_docs": True}),
        ),
        (
            {"model": "r", "query": "q", "documents": ["x"], "top_n": 1},
            ("/rerank", {"model": "r", "query": "q", "documents": ["x"], "top_n": 1}),
        ),
        (  # no documents: Infinity's validation (documents required), not /rerank's TEI one
            {"model": "r", "query": "q"},
            ("/v1/rerank", {"model": "r", "query": "q"}),
        ),
        (
            {"model": "r", "text_1": "q", "text_2": ["a", "b"]},
            ("/v1/score", {"model": "r", "text_1": "q", "text_2": ["a", "b"]}),
        ),
    ],
)
def test_normalize_accepted_shapes(job_input, expected):
    assert normalize(job_input) == expected


@pytest.mark.parametrize(
    ("spelling", "route"),
    [
        ("/v1/embeddings/", "/v1/embeddings"),
        ("/embeddings", "/v1/embeddings"),
        ("v1/rerank", "/v1/rerank"),
        ("rerank/", "/rerank"),  # Infinity's own route
        ("v1/rerank/", "/v1/rerank"),
        ("/embed", "/embed"),  # TEI's, as on HTTP
        ("v1/embed/", "/v1/embed"),
        ("/v2/embed", "/v2/embed"),
        ("/models", "/v1/models"),
        ("/v1/tokenize", "/v1/tokenize"),
        ("tokenize/", "/tokenize"),
        ("/", "/"),
        ("/v2/rerank", "/v2/rerank"),
        ("v2/rerank/", "/v2/rerank"),
    ],
)
def test_normalize_is_lenient_only_on_prefix_and_slashes(spelling, route):
    body = {} if route == "/v1/models" else {"model": "m"}
    assert normalize({"openai_route": spelling, "openai_input": body})[0] == route


def test_native_body_is_a_copy():
    job_input = {"model": "m", "input": "hi"}
    _, body = normalize(job_input)
    body["input"] = "changed"
    assert job_input["input"] == "hi"


def _invalid(job_input: Any) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        normalize(job_input)
    error = info.value
    assert error.kind is ErrorKind.INVALID
    assert error.message.endswith(ACCEPTED_SHAPES)
    return error


@pytest.mark.parametrize("job_input", [None, [1, 2], "text", 3, True])
def test_non_object_input_is_refused(job_input):
    error = _invalid(job_input)
    assert error.param == "input"
    assert error.message.startswith("The job input must be a JSON object, got ")


@pytest.mark.parametrize(
    "route",
    [
        "/v1/chat/completions",
        "/V1/EMBEDDINGS",
        " /v1/embeddings",
        "",
        "/v2/models",
        "/v1/v2/rerank",
        7,
    ],
)
def test_unknown_openai_route_is_refused(route):
    error = _invalid({"openai_route": route, "openai_input": {"model": "m"}})
    assert error.param == "openai_route"
    assert f"Unknown openai_route {route!r}" in error.message
    supported = (
        "/v1/models, /v1/embeddings, /v1/rerank, /rerank, /v1/tokenize, /v1/embed, /v2/embed, "
        "/v2/rerank, /v1/classify, /classify, /v1/score, /embed, /embed_sparse, /embed_all, "
        "/predict, /similarity, /tokenize, /decode, /info, /."
    )
    assert f"Supported: {supported}" in error.message


@pytest.mark.parametrize("openai_input", [None, [EMBED_BODY], "body", 1])
@pytest.mark.parametrize("route", ["/v1/embeddings", "/v1/rerank"])
def test_openai_input_must_be_an_object(route, openai_input):
    job_input = {"openai_route": route}
    if openai_input is not None:
        job_input["openai_input"] = openai_input
    error = _invalid(job_input)
    assert error.param == "openai_input"
    assert f"openai_input must be a JSON object holding the {route} request body" in error.message


@pytest.mark.parametrize("job_input", [{}, {"foo": 1}, {"model": "m"}, {"docs": ["x"]}])
def test_neither_input_nor_query_is_refused(job_input):
    error = _invalid(job_input)
    assert error.param == "input"
    assert "has no 'openai_route', 'input', 'query' or 'text_1'" in error.message


@pytest.mark.parametrize(
    ("job_input", "names"),
    [
        ({"model": "m", "input": "a", "query": "b", "docs": ["c"]}, "'input' (embeddings) and"),
        ({"model": "m", "query": "b", "text_1": "a", "text_2": "c"}, "'query' (rerank) and"),
    ],
)
def test_two_shapes_at_once_are_refused(job_input, names):
    error = _invalid(job_input)
    assert names in error.message and "send one of them" in error.message


def test_an_input_job_for_a_classifier_classifies():
    job = {"model": "c", "input": ["a"]}
    assert normalize(job, classifier=lambda model: model == "c") == ("/v1/classify", job)
    assert normalize(job, classifier=lambda model: False) == ("/v1/embeddings", job)


# ----------------------------------------------------------------------------- handle
class FakeCore:
    """Records dispatches; answers with a canned body or raises a canned error."""

    routes = {path: op for op in OPERATIONS for path in op.paths}

    def __init__(self, result: Any = None, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.result = result if result is not None else {"object": "list", "data": []}
        self.error = error

    async def dispatch(self, route: str, body: Any = None) -> dict[str, Any]:
        self.calls.append((route, body))
        if self.error:
            raise self.error
        return self.result

    def classifier(self, model: Any) -> bool:
        return model == "classifier"


async def test_openai_embeddings_and_rerank_are_wrapped_in_a_list():
    core = FakeCore({"object": "list", "data": [1]})
    job = {"id": "j", "input": {"openai_route": "/v1/embeddings", "openai_input": EMBED_BODY}}
    assert await handle(job, core) == [{"object": "list", "data": [1]}]
    job = {"id": "j", "input": {"openai_route": "/rerank", "openai_input": RERANK_BODY}}
    assert await handle(job, core) == [{"object": "list", "data": [1]}]
    assert core.calls == [("/v1/embeddings", EMBED_BODY), ("/rerank", RERANK_BODY)]


async def test_models_and_native_jobs_return_the_body_itself():
    core = FakeCore({"object": "x"})
    assert await handle({"input": {"openai_route": "/v1/models"}}, core) == {"object": "x"}
    assert await handle({"input": {"model": "m", "input": "a"}}, core) == {"object": "x"}
    assert await handle({"input": {"model": "r", "query": "q", "docs": []}}, core) == {
        "object": "x"
    }
    assert await handle({"input": {"model": "classifier", "input": "a"}}, core) == {"object": "x"}
    assert await handle({"input": {"model": "r", "text_1": "a", "text_2": "b"}}, core) == {
        "object": "x"
    }
    routes = ["/v1/models", "/v1/embeddings", "/rerank", "/v1/classify", "/v1/score"]
    assert [route for route, _ in core.calls] == routes


@pytest.mark.parametrize(
    "error",
    [
        ServiceError(ErrorKind.NOT_FOUND, "Model 'x' is not deployed.", param="model"),
        ServiceError(ErrorKind.TOO_LARGE, "input[0]: audio declares 36000.0 s."),
        ServiceError(ErrorKind.OVERLOADED, "The model queue is full.", retry_after=3),
        ServiceError(ErrorKind.INTERNAL, "The model failed to process this request."),
    ],
)
async def test_service_errors_become_error_output(error):
    job = {"input": {"openai_route": "/v1/embeddings", "openai_input": EMBED_BODY}}
    out = await handle(job, FakeCore(error=error))
    expected = {
        "object": "error",
        "message": error.message,
        "type": error.kind.type,
        "param": None,
        "code": error.kind.status,
    }
    if error.kind is ErrorKind.OVERLOADED:
        expected["retry_after"] = 3  # the seconds HTTP sends as Retry-After
    assert out == expected
    assert "error" not in out  # the SDK would mark the job FAILED and drop the body


@pytest.mark.parametrize("job", [{"input": [1]}, {"input": {"foo": 1}}, {"id": "no-input"}, None])
async def test_malformed_jobs_become_400_output_without_dispatch(job):
    core = FakeCore()
    out = await handle(job, core)
    assert out["object"] == "error" and out["code"] == 400
    assert out["type"] == "invalid_request_error" and out["param"] is None
    assert ACCEPTED_SHAPES in out["message"]
    assert core.calls == []


async def test_unexpected_exception_never_escapes(caplog):
    out = await handle({"input": {"model": "m", "input": "a"}}, FakeCore(error=KeyError("boom")))
    assert out == error_output(
        ServiceError(
            ErrorKind.INTERNAL, "The worker failed to process this job. The error was logged."
        )
    )
    assert "boom" not in json.dumps(out)
    assert "unexpected failure handling a RunPod job" in caplog.text
