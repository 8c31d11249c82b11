"""The kinds of media input (image, audio): data URIs, the content types a download may
answer with, and how `auto` recognises an image."""

from __future__ import annotations

import re
from dataclasses import dataclass

from handlers.media.audio import AUDIO_DATA_URI

__all__ = ["AUDIO", "IMAGE", "Kind", "looks_like_image"]

_DATA_URI = re.compile(r"^data:image/[\w.+-]+(?:;[\w-]+=[^;,]*)*;base64,", re.IGNORECASE)
_BINARY = ("application/octet-stream", "binary/octet-stream")


@dataclass(frozen=True)
class Kind:
    """One kind of media input: its name in messages and codes, data URI, content types."""

    name: str
    data_uri: re.Pattern[str]
    accepted: tuple[str, ...]  # content-type prefixes a download may answer with
    accept: str  # the Accept header sent


IMAGE = Kind("image", _DATA_URI, ("image/", *_BINARY), "image/*")
AUDIO = Kind(
    "audio", AUDIO_DATA_URI, ("audio/", "video/ogg", "application/ogg", *_BINARY), "audio/*"
)


def looks_like_image(item: str) -> bool:
    """`auto` modality: http(s) URLs and `data:image/...;base64,` URIs are images; everything
    else (including other text that starts with "data:") is text."""
    return item[:8].lower().startswith(("http://", "https://")) or bool(_DATA_URI.match(item))
