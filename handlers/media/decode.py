"""Bounded image decoding: header checks first, then a reduced decode shrunk to a maximum side."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

from PIL import Image

from handlers.errors import ErrorKind

__all__ = [
    "ACCEPTED_FORMATS",
    "MAX_IMAGE_PIXELS",
    "MIN_IMAGE_SIDE",
    "ItemError",
    "out_of_memory",
    "decode_image",
    "open_image",
]

log = logging.getLogger(__name__)

MAX_IMAGE_PIXELS = 40_000_000  # decompression-bomb guard: 40 megapixels (e.g. 8000x5000)
MIN_IMAGE_SIDE = 3  # Infinity's CLIP processors refuse smaller images
# Pillow's format names; MPO is the multi-picture JPEG many phone cameras write.
ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP"})
ACCEPTED_NAMES = "JPEG, PNG, WebP, GIF or BMP"


class ItemError(Exception):
    """One input item is unusable; the loader reports it as `input[i]: <message>`."""

    def __init__(
        self,
        message: str,
        kind: ErrorKind = ErrorKind.INVALID,
        code: str = "invalid_image",
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.retry_after = retry_after


@contextlib.contextmanager
def _decode_errors() -> Iterator[None]:
    """Pillow's failures as ItemErrors: bad data 400, bombs 413, out of memory 503."""
    try:
        yield
    except ItemError:
        raise
    except Image.DecompressionBombError:
        raise ItemError(
            "image exceeds the pixel limit", ErrorKind.TOO_LARGE, "image_too_large"
        ) from None
    except MemoryError:
        raise out_of_memory("an image") from None
    except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError, ... on bad data
        raise ItemError(f"not a decodable image ({type(exc).__name__})") from None


def out_of_memory(what: str) -> ItemError:
    """The 503 (Retry-After: 1) for running out of memory while decoding `what`, logged."""
    log.error("Out of memory while decoding %s; answered 503", what)
    return ItemError(
        f"not enough memory to decode this {what.split()[-1]} now; retry shortly",
        ErrorKind.NOT_READY,
        "out_of_memory",
        retry_after=1,
    )


def _ratio(width: int, height: int) -> str:
    return f"{max(width, height) / min(width, height):.1f}".removesuffix(".0")


def _check_header(img: Image.Image, max_aspect_ratio: float) -> None:
    if img.format not in ACCEPTED_FORMATS:
        raise ItemError(
            f"image format {img.format} is not accepted; send {ACCEPTED_NAMES}",
            code="unsupported_image_format",
        )
    width, height = img.size
    if width * height > MAX_IMAGE_PIXELS:
        raise ItemError(
            f"image is {width}x{height} pixels, over the {MAX_IMAGE_PIXELS} pixel limit",
            ErrorKind.TOO_LARGE,
            "image_too_large",
        )
    if min(width, height) < MIN_IMAGE_SIDE:
        raise ItemError(f"image is {width}x{height}; the minimum is 3x3 pixels")
    if max(width, height) > max_aspect_ratio * min(width, height):
        raise ItemError(
            f"image is {width}x{height} pixels, an aspect ratio of {_ratio(width, height)}:1; "
            f"at most {max_aspect_ratio:g}:1 is accepted (MAX_IMAGE_ASPECT_RATIO)",
            code="image_aspect_ratio",
        )


def open_image(data: bytes, max_side: int, max_aspect_ratio: float) -> Image.Image:
    """Read only the header of `data` and check format, pixel count, size and aspect ratio.
    A JPEG is set to decode at the smallest scale (1/2, 1/4, 1/8) that still covers
    `max_side`, so `size` is then what decoding will allocate.

    Raises:
        ItemError: 400 for bad data, a refused format or aspect ratio; 413 over the pixel limit.
    """
    with _decode_errors():
        img = Image.open(io.BytesIO(data))
        _check_header(img, max_aspect_ratio)
        img.draft("RGB", (max_side, max_side))
        return img


def _fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """`size` scaled down to fit max_side x max_side, no side under MIN_IMAGE_SIDE."""
    scale = max_side / max(size)
    if scale >= 1:
        return size
    width, height = (max(MIN_IMAGE_SIDE, round(side * scale)) for side in size)
    return width, height


def decode_image(img: Image.Image, max_side: int) -> Image.Image:
    """Decode an image from open_image() (first frame), as RGB, no side over `max_side`.

    Raises:
        ItemError: 400 for data that does not decode; 503 (logged) when memory runs out.
    """
    with _decode_errors(), img:
        rgb = img.convert("RGB")
        target = _fit(rgb.size, max_side)
        if target == rgb.size:
            return rgb
        return rgb.resize(target, Image.Resampling.BICUBIC, reducing_gap=2.0)
