"""Embedding vectors as replied: Matryoshka cut, normalisation, quantisation, wire encoding."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["FLOATS", "encode", "quantize"]

FLOATS = {"float": "<f4", "float16": "<f2"}  # the float types: their little-endian bytes


def _unit(matrix: NDArray[Any]) -> NDArray[Any]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: NDArray[Any] = matrix / np.where(norms == 0, 1.0, norms)
    return unit


def quantize(matrix: NDArray[Any], embedding_type: str) -> NDArray[Any]:
    """Fixed definitions (no calibration), on rows of normalised vectors:
    int8 = round(127 v) clipped to [-127, 127]; uint8 = int8 + 128;
    ubinary = numpy.packbits(v > 0) per row, zero-padded to a multiple of 8 dimensions;
    binary = ubinary - 128 as int8 (sentence-transformers' and Cohere's definitions);
    float16: the values rounded to half precision."""
    if embedding_type == "float":
        return matrix
    if embedding_type == "float16":
        return matrix.astype(np.float16)
    if embedding_type in ("int8", "uint8"):
        int8: NDArray[np.int8] = np.clip(np.rint(matrix * 127.0), -127, 127).astype(np.int8)
        return int8 if embedding_type == "int8" else (int8.astype(np.int16) + 128).astype(np.uint8)
    packed = np.packbits(matrix > 0, axis=1)
    return (
        packed if embedding_type == "ubinary" else (packed.astype(np.int16) - 128).astype(np.int8)
    )


def encode(
    vectors: list[NDArray[Any]],
    *,
    encoding: str,
    dimensions: int | None,
    normalize: bool,
    embedding_type: str,
) -> list[Any]:
    """Rows as the reply carries them: numpy rows (float32 or float16, or the quantised
    integer type; handlers.api.wire prints them), or base64 strings. Order: `dimensions` cut
    first, then re-normalise (skipped for normalize=false floats), then quantise (the
    integer types always from the normalised vector). base64 is the raw bytes: little-endian
    float32 or float16, or one byte per value."""
    matrix = np.asarray(np.stack(vectors), dtype=np.float32)
    cut = dimensions is not None
    if cut:
        matrix = matrix[:, :dimensions]
    # normalize=true vectors come normalised from the model: only a cut needs it again
    if (normalize or embedding_type not in FLOATS) and (cut or not normalize):
        matrix = _unit(matrix)
    values = quantize(matrix, embedding_type)
    if encoding == "base64":
        raw = values.astype(FLOATS[embedding_type]) if embedding_type in FLOATS else values
        return [base64.b64encode(row.tobytes()).decode("ascii") for row in raw]
    return list(values)
