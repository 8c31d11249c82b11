"""What the routes of Hugging Face's text-embeddings-inference (TEI v1.9) share: their
`inputs` (a text, texts, token ids), truncation as TEI spells it, the model a route answers
for (TEI has no model field), our requests built from theirs, and errors in TEI's body and
field names."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from handlers.core.schemas import RequestBody
from handlers.errors import ErrorKind, ServiceError

if TYPE_CHECKING:
    from handlers.core.dispatch import Core

__all__ = ["Direction", "TeiRequest", "TokenId", "empty", "our_fields", "speaks_tei", "texts"]

# our field names in TEI's (an error names the field the client sent)
NAMES = {"input": "inputs", "documents": "texts", "text_1": "source_sentence"}
# TEI's spellings, exactly ("LEFT" is refused); a pattern, not an enum of two cases of each
Direction = Annotated[str, Field(pattern="^(Left|left|Right|right)$")]
TokenId = Annotated[int, Field(ge=0, lt=2**32)]  # a u32, as tokenizers takes it
Ids = list[TokenId]


class TeiRequest(RequestBody):
    """The fields every TEI route of texts takes (TEI ignores unknown fields, as we do)."""

    model: str | None = Field(
        None,
        description="Not TEI's: a served model; default the first served model that can "
        "run the route (TEI serves one).",
    )
    inputs: str | Ids | list[str | Ids] = Field(
        description="A text, a list of texts, token ids, or a list of token id lists "
        "(decoded with the model's tokenizer and read as text)."
    )
    truncate: bool | None = Field(
        None,
        description="false: an input past the model's length is a 422. Default true (TEI's "
        "--auto-truncate default).",
    )
    truncation_direction: Direction = "Right"
    prompt_name: str | None = Field(None, description="A prompt of the model (see /info).")

    def items(self) -> list[str | list[int]]:
        """Each input: a text or a token id list (a flat list of ids is one input)."""
        if isinstance(self.inputs, str):
            return [self.inputs]
        if not self.inputs or all(isinstance(i, int) for i in self.inputs):
            return [list(self.inputs)]  # type: ignore[arg-type]
        return list(self.inputs)  # type: ignore[arg-type]


def empty(field: str = "inputs") -> ServiceError:
    """TEI's 400 for an empty input or list."""
    return ServiceError(
        ErrorKind.INVALID,
        f"Input validation error: `{field}` cannot be empty",
        param=field,
        code="empty",
    )


async def texts(core: Core, model: str, items: list[str | list[int]]) -> list[str]:
    """The inputs as texts: token id lists decoded by the model's tokenizer (its special
    tokens dropped: the model adds its own when it reads the text).

    Raises:
        ServiceError: TEI's Empty for no input or an empty one; INVALID when the model has
            no tokenizer to decode ids with.
    """
    if not items or any(len(item) == 0 for item in items):
        raise empty()
    ids = [item for item in items if not isinstance(item, str)]
    found = await core.backend.decode(model, ids, True) if ids else []
    if found is None:
        raise ServiceError(
            ErrorKind.INVALID,
            f"Model '{model}' has no fast tokenizer to read token ids with: send texts.",
            param="inputs",
        )
    decoded = iter(found)
    return [item if isinstance(item, str) else next(decoded) for item in items]


def our_fields(options: Any, model: str, inputs: list[str]) -> dict[str, Any]:
    """Our embeddings body's fields for TEI's `options` (a TeiRequest, or /similarity's
    parameters: truncate, truncation_direction, prompt_name) of `inputs`."""
    return {
        "model": model,
        "input": inputs,
        "truncate": options.truncate is not False,
        "truncation_direction": options.truncation_direction.lower(),
        "prompt_name": options.prompt_name,
    }


def speaks_tei(
    handler: Callable[[Core, Any], Awaitable[Any]],
) -> Callable[[Core, Any], Awaitable[Any]]:
    """A TEI route's handler: its errors name TEI's fields and are answered in TEI's body."""

    @functools.wraps(handler)
    async def wrapped(core: Core, body: Any) -> Any:
        try:
            return await handler(core, body)
        except ServiceError as error:
            raise error.renamed(NAMES, "tei") from None

    return wrapped
