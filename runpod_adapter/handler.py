"""RunPod jobs without the SDK: pure normalize(job input) -> (route, body); output shaping."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from handlers.api.wire import plain
from handlers.core.table import OPERATIONS
from handlers.errors import ErrorKind, ServiceError

__all__ = [
    "ACCEPTED_SHAPES",
    "Dispatcher",
    "accepted_shapes",
    "canonical_route",
    "error_output",
    "handle",
    "normalize",
]

log = logging.getLogger(__name__)

DEFAULT_ROUTES = {op.path: op.method for op in OPERATIONS}


def accepted_shapes(routes: Mapping[str, str]) -> str:
    """The job inputs accepted, in words, for routes (path -> method) of the core."""

    def quoted(get: bool, join: str) -> str:
        return join.join(f'"{path}"' for path, m in routes.items() if (m == "GET") == get)

    return (
        f'Accepted job inputs: {{"openai_route": {quoted(True, " or ")}}}; '
        f'{{"openai_route": {quoted(False, ", ")}, "openai_input": {{...}}}}; '
        '{"model", "input", "modality"?, ...} (embeddings; a classifier: classify); '
        '{"model", "query", "docs", "return_docs"?, ...} (rerank); '
        '{"model", "text_1", "text_2"} (score).'
    )


ACCEPTED_SHAPES = accepted_shapes(DEFAULT_ROUTES)  # with the service's own operations


class Dispatcher(Protocol):
    """What the adapter uses of handlers.core.dispatch.Core: its routes and dispatch."""

    @property
    def routes(self) -> Mapping[str, Any]: ...

    async def dispatch(self, route: str, body: Any = None) -> dict[str, Any]: ...

    def classifier(self, model: Any) -> bool: ...


def _json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages: object, array, string, null, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number"}
    return names.get(type(value), type(value).__name__)


def _invalid(routes: Mapping[str, str], problem: str, param: str = "input") -> ServiceError:
    return ServiceError(ErrorKind.INVALID, f"{problem} {accepted_shapes(routes)}", param=param)


def canonical_route(value: Any, routes: Mapping[str, str] = DEFAULT_ROUTES) -> str | None:
    """The core route an `openai_route` names, or None.

    Lenient only on spelling that cannot mean anything else: leading/trailing slashes are
    ignored and the `/v1` prefix may be left out (`/embeddings`, `v1/rerank/`; other
    prefixes, such as `/v2/rerank`, are kept). Case, whitespace and any other path are not
    corrected; an empty one names nothing (TEI's root route is "/").
    """
    if not isinstance(value, str) or not value:
        return None
    path = "/" + value.strip("/")
    for route in (path, "/v1" + path):
        if route in routes:
            return route
    return None


def normalize(
    job_input: Any,
    routes: Mapping[str, str] = DEFAULT_ROUTES,
    classifier: Callable[[Any], bool] | None = None,
) -> tuple[str, dict[str, Any] | None]:
    """Map a job's `input` onto a core route (a path of `routes`, path -> method) and
    request body (no I/O). A native `input` job whose model `classifier` says is a
    classifier (one that gives no embeddings) classifies.

    Raises:
        ServiceError: INVALID (param "input") for any input that is not one of the
            accepted shapes; the message lists them.
    """
    if not isinstance(job_input, dict):
        raise _invalid(routes, f"The job input must be a JSON object, got {_json_type(job_input)}.")
    if "openai_route" in job_input:
        raw = job_input["openai_route"]
        route = canonical_route(raw, routes)
        if route is None:
            raise _invalid(
                routes,
                f"Unknown openai_route {raw!r}. Supported: {', '.join(routes)}.",
                param="openai_route",
            )
        if routes[route] == "GET":
            return route, None
        body = job_input.get("openai_input")
        if not isinstance(body, dict):
            raise _invalid(
                routes,
                f"openai_input must be a JSON object holding the {route} request body, "
                f"got {_json_type(body)}.",
                param="openai_input",
            )
        return route, body
    shapes = {"input": "embeddings", "query": "rerank", "text_1": "score"}
    given = [key for key in shapes if key in job_input]
    if len(given) > 1:
        names = " and ".join(f"'{key}' ({shapes[key]})" for key in given)
        raise _invalid(routes, f"The job input has {names}: send one of them.")
    if given == ["input"]:
        if classifier is not None and classifier(job_input.get("model")):
            return "/v1/classify", dict(job_input)
        return "/v1/embeddings", dict(job_input)
    if given == ["text_1"]:
        return "/v1/score", dict(job_input)
    if given:  # rerank, with the RunPod Infinity worker's reply: documents as sent
        # no documents at all: Infinity's validation names them (/rerank would name both
        # Infinity's and TEI's shapes, for the HTTP path both speak)
        bodies = {"documents", "docs", "texts"} & set(job_input)
        return ("/rerank" if bodies else "/v1/rerank"), dict(job_input)
    keys = ", ".join(repr(key) for key in list(job_input)[:10]) or "none"
    raise _invalid(
        routes,
        f"The job input has no 'openai_route', 'input', 'query' or 'text_1' (keys: {keys}).",
    )


def error_output(error: ServiceError) -> dict[str, Any]:
    """The error job output clients of the RunPod Infinity worker parse (no `error` key,
    which would make the SDK mark the job FAILED and hide the body); 429 and 503 outputs
    carry `retry_after` seconds."""
    output: dict[str, Any] = {
        "object": "error",
        "message": error.message,
        "type": error.kind.type,
        "param": None,
        "code": error.status,
    }
    if error.retry_after:
        output["retry_after"] = error.retry_after  # seconds, as HTTP's Retry-After
    return output


INTERNAL_ERROR = ServiceError(
    ErrorKind.INTERNAL, "The worker failed to process this job. The error was logged."
)


async def handle(job: Any, core: Dispatcher) -> dict[str, Any] | list[dict[str, Any]]:
    """Run one RunPod job through the core and shape its output; never raises.

    `openai_route` bodies (embeddings, rerank, tokenize) come back wrapped in a one-element
    list (what RunPod's OpenAI-compatible proxy expects of a worker); `/v1/models` and
    native jobs return the body itself; every failure returns `error_output(...)`.
    """
    try:
        job_input = job.get("input") if isinstance(job, dict) else None
        routes = {op.path: op.method for op in core.routes.values()}  # no aliases
        route, body = normalize(job_input, routes, core.classifier)
        result = plain(await core.dispatch(route, body))  # what the SDK can serialise
        if isinstance(job_input, dict) and "openai_route" in job_input and routes[route] != "GET":
            return [result]
        return result
    except ServiceError as error:
        return error_output(error)
    except Exception:
        log.exception("unexpected failure handling a RunPod job")
        return error_output(INTERNAL_ERROR)
