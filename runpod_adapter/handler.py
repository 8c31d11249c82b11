"""RunPod jobs without the SDK: pure normalize(job input) -> (route, body); output shaping."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from handlers.core import ROUTES as CORE_ROUTES
from handlers.errors import ErrorKind, ServiceError

__all__ = [
    "ACCEPTED_SHAPES",
    "ROUTES",
    "Dispatcher",
    "canonical_route",
    "error_output",
    "handle",
    "normalize",
]

log = logging.getLogger(__name__)

ROUTES = tuple(CORE_ROUTES)
ACCEPTED_SHAPES = (
    'Accepted job inputs: {"openai_route": "/v1/models"}; '
    '{"openai_route": "/v1/embeddings", "/v1/rerank", "/v2/rerank" or "/v1/tokenize", '
    '"openai_input": {...}}; '
    '{"model", "input", "modality"?, ...} (embeddings); '
    '{"model", "query", "docs", "return_docs"?, ...} (rerank).'
)


class Dispatcher(Protocol):
    """The one method of handlers.core.Core the adapter uses."""

    async def dispatch(self, route: str, body: Any = None) -> dict[str, Any]: ...


def _json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages: object, array, string, null, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number"}
    return names.get(type(value), type(value).__name__)


def _invalid(problem: str, param: str = "input") -> ServiceError:
    return ServiceError(ErrorKind.INVALID, f"{problem} {ACCEPTED_SHAPES}", param=param)


def canonical_route(value: Any) -> str | None:
    """The core route an `openai_route` names, or None.

    Lenient only on spelling that cannot mean anything else: the `/v1` prefix may be left
    out and leading/trailing slashes are ignored (`/embeddings`, `v1/rerank/`; `/v2/rerank`
    keeps its prefix). Case, whitespace and any other path are not corrected.
    """
    if not isinstance(value, str):
        return None
    path = value.strip("/")
    route = f"/{path}" if path.startswith("v2/") else f"/v1/{path.removeprefix('v1/')}"
    return route if route in ROUTES else None


def normalize(job_input: Any) -> tuple[str, dict[str, Any] | None]:
    """Map a job's `input` onto a core route and request body (no I/O).

    Raises:
        ServiceError: INVALID (param "input") for any input that is not one of the
            accepted shapes; the message lists them.
    """
    if not isinstance(job_input, dict):
        raise _invalid(f"The job input must be a JSON object, got {_json_type(job_input)}.")
    if "openai_route" in job_input:
        raw = job_input["openai_route"]
        route = canonical_route(raw)
        if route is None:
            raise _invalid(
                f"Unknown openai_route {raw!r}. Supported: {', '.join(ROUTES)}.",
                param="openai_route",
            )
        if route == "/v1/models":
            return route, None
        body = job_input.get("openai_input")
        if not isinstance(body, dict):
            raise _invalid(
                f"openai_input must be a JSON object holding the {route} request body, "
                f"got {_json_type(body)}.",
                param="openai_input",
            )
        return route, body
    has_input, has_query = "input" in job_input, "query" in job_input
    if has_input and has_query:
        raise _invalid("The job input has both 'input' (embeddings) and 'query' (rerank).")
    if has_input:
        return "/v1/embeddings", dict(job_input)
    if has_query:
        return "/v1/rerank", dict(job_input)
    keys = ", ".join(repr(key) for key in list(job_input)[:10]) or "none"
    raise _invalid(f"The job input has no 'openai_route', 'input' or 'query' (keys: {keys}).")


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
        route, body = normalize(job_input)
        result = await core.dispatch(route, body)
        if "openai_route" in job_input and route != "/v1/models":
            return [result]
        return result
    except ServiceError as error:
        return error_output(error)
    except Exception:
        log.exception("unexpected failure handling a RunPod job")
        return error_output(INTERNAL_ERROR)
