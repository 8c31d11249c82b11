"""Typed service errors and their one mapping to an HTTP status and OpenAI error body."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "At",
    "ErrorKind",
    "Loc",
    "ServiceError",
    "batch_failed",
    "format_loc",
    "model_dead",
    "openai_error_body",
    "tei_error_body",
]

Loc = tuple[str | int, ...]
"""Where in a request body: field names and list indexes, outermost first (("input", 3))."""


def format_loc(loc: Loc) -> str:
    """A location as clients read it: `input[3]`, `inputs[0].content`, `body` for the whole."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


@dataclass(frozen=True)
class At:
    """A part of an error message about one place in the request: its location, then what is
    wrong there (`At(("input", 3), " has 32 tokens; ...")` reads `input[3] has 32 tokens; ...`).
    Kept apart so that another API's dialect can name the place its own way."""

    loc: Loc
    text: str

    def renamed(self, names: Mapping[str, str]) -> At:
        """The same part with the location's first field named by `names` where it has one."""
        head = self.loc[0] if self.loc else None
        if not isinstance(head, str) or head not in names:
            return self
        return replace(self, loc=(names[head], *self.loc[1:]))

    def __str__(self) -> str:
        return format_loc(self.loc) + self.text


class ErrorKind(enum.Enum):
    """What went wrong, independent of transport: (HTTP status, OpenAI error type)."""

    INVALID = (400, "invalid_request_error")
    UNAUTHORIZED = (401, "authentication_error")
    NOT_FOUND = (404, "invalid_request_error")
    TOO_LARGE = (413, "invalid_request_error")
    OVERLOADED = (429, "rate_limit_error")
    INTERNAL = (500, "server_error")
    NOT_READY = (503, "service_unavailable_error")

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def type(self) -> str:
        return self.value[1]


class ServiceError(Exception):
    """An error a client can act on; `message` is safe to show (no internals). A message
    about places in the request is given as `At` parts (joined by '; '), which `renamed`
    names in another API's fields."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str | At | Sequence[At | str],
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
        dialect: str = "openai",
    ) -> None:
        self.parts: tuple[At | str, ...] = (
            (message,) if isinstance(message, (str, At)) else tuple(message)
        )
        super().__init__(self.message)
        self.kind = kind
        self.param = param
        self.code = code
        self.retry_after = retry_after
        self.dialect = dialect  # the error body it is answered with: "openai" or "tei"

    @property
    def message(self) -> str:
        return "; ".join(map(str, self.parts))

    def renamed(self, names: Mapping[str, str], dialect: str | None = None) -> ServiceError:
        """The same error in another API's field names (`names`: ours -> theirs): each
        located part's first field and `param`; the text around them is left as it is.
        `dialect`: answered with that API's error body."""
        return ServiceError(
            self.kind,
            [part.renamed(names) if isinstance(part, At) else part for part in self.parts],
            param=names.get(self.param or "", self.param),
            code=self.code,
            retry_after=self.retry_after,
            dialect=dialect or self.dialect,
        )

    @property
    def status(self) -> int:
        return self.kind.status


def openai_error_body(error: ServiceError) -> dict[str, Any]:
    """The OpenAI error body: {"error": {"message", "type", "param", "code"}}."""
    return {
        "error": {
            "message": error.message,
            "type": error.kind.type,
            "param": error.param,
            "code": error.code or str(error.status),
        }
    }


# TEI's error_type and status of each kind (text-embeddings-inference's router: an empty
# input is 400 "Empty"; validation, too-long inputs and too many items are 422; a model that
# cannot run the route or fails is 424 "Backend").
_TEI = {
    ErrorKind.INVALID: (422, "Validation"),
    ErrorKind.UNAUTHORIZED: (401, "Unauthorized"),
    ErrorKind.NOT_FOUND: (422, "Validation"),
    ErrorKind.TOO_LARGE: (422, "Validation"),
    ErrorKind.OVERLOADED: (429, "Overloaded"),
    ErrorKind.INTERNAL: (424, "Backend"),
    ErrorKind.NOT_READY: (503, "Unhealthy"),
}


def tei_error_body(error: ServiceError) -> tuple[int, dict[str, Any]]:
    """TEI's status and error body, {"error", "error_type"}, for `error`."""
    status, kind = _TEI[error.kind]
    if error.code == "empty":
        status, kind = 400, "Empty"
    elif error.code == "model_capability":
        status, kind = 424, "Backend"
    elif error.code == "request_too_large":
        status = 413
    return status, {"error": error.message, "error_type": kind}


def batch_failed() -> ServiceError:
    """A model stage raised on a batch holding this request (the traceback is logged)."""
    return ServiceError(
        ErrorKind.INTERNAL,
        "The model failed while processing this batch; the error was logged. Retry the request.",
        code="engine_failure",
    )


def model_dead() -> ServiceError:
    """A model's batching thread died or it stalled far too long: the replica is replaced."""
    return ServiceError(
        ErrorKind.NOT_READY,
        "The model has stopped working; this replica is being replaced. Retry.",
        code="model_dead",
        retry_after=5,
    )
