"""Reply vectors: the quantisation definitions, their order with dimensions, base64 bytes."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from sentence_transformers.quantization import quantize_embeddings

from handlers.api.wire import dumps, plain
from handlers.core.vectors import encode, quantize

RNG = np.random.default_rng(7)


def unit_rows(n: int, dims: int) -> np.ndarray:
    rows = RNG.standard_normal((n, dims)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["binary", "ubinary"])
def test_binary_types_are_sentence_transformers_own(kind):
    rows = unit_rows(3, 24)
    ours = quantize(rows, kind)
    assert ours.shape == (3, 3)
    assert np.array_equal(ours, quantize_embeddings(rows, precision=kind))
    # 20 dimensions: zero-padded to 24 bits, as if the last 4 values were not positive
    padded = np.concatenate([rows[:, :20], -np.ones((3, 4), dtype=np.float32)], axis=1)
    assert np.array_equal(quantize(rows[:, :20], kind), quantize(padded, kind))


def test_int8_and_uint8_are_fixed_scalings_of_the_normalised_vector():
    rows = np.array([[1.0, -1.0, 0.5, -0.003, 0.0]], dtype=np.float32)
    assert quantize(rows, "int8").tolist() == [[127, -127, 64, 0, 0]]
    assert quantize(rows, "uint8").tolist() == [[255, 1, 192, 128, 128]]
    assert quantize(rows, "int8").dtype == np.int8 and quantize(rows, "uint8").dtype == np.uint8


def test_384_dimensions_give_48_binary_values():
    rows = unit_rows(1, 384)
    out = encode(
        list(rows), encoding="float", dimensions=None, normalize=True, embedding_type="binary"
    )
    assert len(out[0]) == 48 and all(-128 <= v <= 127 for v in out[0])


def test_dimensions_cut_then_renormalise_then_quantise():
    rows = unit_rows(2, 16)
    cut = rows[:, :8] / np.linalg.norm(rows[:, :8], axis=1, keepdims=True)
    out = encode(list(rows), encoding="float", dimensions=8, normalize=True, embedding_type="int8")
    assert plain(out) == quantize(cut, "int8").tolist()


def test_normalize_false_cuts_without_renormalising_but_quantises_the_normalised_vector():
    raw = [np.array([3.0, 4.0, 12.0], dtype=np.float32)]
    floats = encode(raw, encoding="float", dimensions=2, normalize=False, embedding_type="float")
    assert plain(floats) == [[3.0, 4.0]]
    ints = encode(raw, encoding="float", dimensions=2, normalize=False, embedding_type="int8")
    assert plain(ints) == [[76, 102]]  # round(127 * 0.6), round(127 * 0.8)


@pytest.mark.parametrize(
    ("kind", "dtype"),
    [("int8", np.int8), ("uint8", np.uint8), ("ubinary", np.uint8), ("float16", "<f2")],
)
def test_base64_is_the_raw_bytes(kind, dtype):
    rows = unit_rows(1, 16)
    (text,) = encode(
        list(rows), encoding="base64", dimensions=None, normalize=True, embedding_type=kind
    )
    listed = encode(
        list(rows), encoding="float", dimensions=None, normalize=True, embedding_type=kind
    )
    wire = np.asarray(plain(listed)[0]).astype(dtype)  # float16: printed shortest, re-rounded
    assert np.frombuffer(base64.b64decode(text), dtype=dtype).tolist() == wire.tolist()


def test_float16_is_half_precision_and_keeps_normalize_false():
    raw = [np.array([3.0, 4.0, 12.0], dtype=np.float32)]
    (half,) = encode(
        raw, encoding="float", dimensions=None, normalize=False, embedding_type="float16"
    )
    assert half.dtype == np.float16 and plain([half]) == [[3.0, 4.0, 12.0]]
    rows = unit_rows(1, 16)
    (cut,) = encode(
        list(rows), encoding="float", dimensions=4, normalize=True, embedding_type="float16"
    )
    want = rows[0, :4] / np.linalg.norm(rows[0, :4])
    assert np.allclose(cut.astype(np.float32), want, atol=1e-3)


def test_float_vectors_go_on_the_wire_as_float32_exactly_and_shorter():
    rows = unit_rows(4, 384)
    (row, *_) = encode(
        list(rows), encoding="float", dimensions=None, normalize=True, embedding_type="float"
    )
    body = dumps({"embedding": row})
    parsed = np.array(plain({"embedding": row})["embedding"], dtype=np.float32)
    assert np.array_equal(parsed, rows[0])  # every float32 value exactly
    as_python_floats = len(dumps({"embedding": rows[0].tolist()}))
    assert len(body) < 0.65 * as_python_floats  # 17 digits a value no more
