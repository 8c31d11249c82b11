"""Typed service errors and their one mapping to an HTTP status and OpenAI error body."""

from __future__ import annotations

import enum
from typing import Any

__all__ = ["ErrorKind", "ServiceError", "batch_failed", "model_dead", "openai_error_body"]


class ErrorKind(enum.Enum):
    """What went wrong, independent of transport: (HTTP status, OpenAI error type)."""

    INVALID = (400, "invalid_request_error")
    UNAUTHORIZED = (401, "authentication_error")
    NOT_FOUND = (404, "invalid_request_error")
    TOO_LARGE = (413, "invalid_request_error")
    OVERLOADED = (429, "rate_limit_error")
    INTERNAL = (500, "server_error")
    NOT_IMPLEMENTED = (501, "not_implemented_error")
    NOT_READY = (503, "service_unavailable_error")

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def type(self) -> str:
        return self.value[1]


class ServiceError(Exception):
    """An error a client can act on; `message` is safe to show (no internals)."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after

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
