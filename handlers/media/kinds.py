"""The kinds of media input (image, audio): data URIs, the content types a download may
answer with, and how `auto` recognises each."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

__all__ = ["AUDIO", "IMAGE", "Kind", "is_url", "looks_like_audio", "looks_like_image"]

_IMAGE_URI = re.compile(r"^data:image/[\w.+-]+(?:;[\w-]+=[^;,]*)*;base64,", re.IGNORECASE)
_AUDIO_URI = re.compile(r"^data:audio/[\w.+-]+(?:;[\w-]+=[^;,]*)*;base64,", re.IGNORECASE)
_BINARY = ("application/octet-stream", "binary/octet-stream")
_BASE64 = re.compile(r"^[A-Za-z0-9+/\r\n]{64,}={0,2}\s*$")  # line breaks: MIME-wrapped
_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3")


@dataclass(frozen=True)
class Kind:
    """One kind of media input: its name in messages and codes, data URI, content types."""

    name: str
    data_uri: re.Pattern[str]
    accepted: tuple[str, ...]  # content-type prefixes a download may answer with
    accept: str  # the Accept header sent
    not_one: str  # "not <this>: <url> answered content-type ..."


IMAGE = Kind("image", _IMAGE_URI, ("image/", *_BINARY), "image/*", "an image")
AUDIO = Kind("audio", _AUDIO_URI, ("audio/", "application/ogg", *_BINARY), "audio/*", "audio")


def is_url(item: str) -> bool:
    """Whether `item` is an http(s) URL (the only schemes fetched)."""
    return item[:8].lower().startswith(("http://", "https://"))


def looks_like_image(item: str) -> bool:
    """`auto` modality: http(s) URLs and `data:image/...;base64,` URIs are images; everything
    else (including other text that starts with "data:") is text."""
    return is_url(item) or bool(_IMAGE_URI.match(item))


def looks_like_audio(item: str) -> bool:
    """`auto` modality, asked before images: `data:audio/...;base64,` URIs, http(s) URLs
    whose path ends in an audio extension (.wav, .flac, .ogg, .oga, .opus, .mp3), and bare
    base64 (the whole item, 64 characters at least) of a file that starts as a WAV, FLAC,
    OGG or MP3 file does: RIFF....WAVE, fLaC, OggS, an ID3 tag or a valid MPEG audio frame
    header."""
    if _AUDIO_URI.match(item):
        return True
    if is_url(item):
        return item.split("?", 1)[0].split("#", 1)[0].lower().endswith(_EXTENSIONS)
    if not _BASE64.match(item):
        return False
    try:
        head = base64.b64decode("".join(item[:64].split())[:16], validate=True)
    except (binascii.Error, ValueError):
        return False
    if head[:4] == b"RIFF":
        return head[8:12] == b"WAVE"
    return head.startswith((b"fLaC", b"OggS", b"ID3")) or _mpeg_frame(head)


def _mpeg_frame(head: bytes) -> bool:
    """An MPEG audio frame header: sync, a layer, a bitrate and a sampling rate index that
    are not the reserved or free ones."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3
