"""Request bodies validated against the wire schemas; every failure is one 400 naming fields."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from handlers.errors import At, ErrorKind, ServiceError

__all__ = ["parse_body"]


def parse_body(model: type[BaseModel], body: Any, context: dict[str, Any] | None = None) -> Any:
    """Validate a request body against `model`, with the validators' `context` (e.g. the
    token-id decoder of TOKEN_ARRAYS).

    Raises:
        ServiceError: INVALID, one message naming up to five failing fields by location
            (e.g. `input[3]: Input should be a valid string`).
    """
    if not isinstance(body, dict):
        raise ServiceError(ErrorKind.INVALID, "The request body must be a JSON object.")
    try:
        return model.model_validate(body, context=context)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        parts = [
            err["msg"] if err["type"] == "modality" else At(tuple(err["loc"]), f": {err['msg']}")
            for err in errors[:5]
        ]
        param = str(errors[0]["loc"][0]) if errors[0]["loc"] else None
        raise ServiceError(ErrorKind.INVALID, parts, param=param) from None
