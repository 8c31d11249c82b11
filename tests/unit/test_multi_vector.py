"""Multi-vector replies and late interaction, on small matrices computed here."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from handlers.core.multi_vector import maxsim, rows
from handlers.core.schemas import EmbeddingsRequest

QUERY = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
DOC = np.array([[0.0, 1.0], [0.8, 0.6], [1.0, 0.0]], dtype=np.float32)


def request(**fields) -> EmbeddingsRequest:
    return EmbeddingsRequest.model_validate({"model": "m", "input": "a", **fields})


def test_maxsim_sums_each_query_vectors_best_match():
    # query row 0: best 1.0 (doc row 2); row 1: best max(0.8, 0.96, 0.6) = 0.96
    assert maxsim(QUERY, DOC) == pytest.approx(1.96)
    assert maxsim(QUERY, DOC, mean=True) == pytest.approx(0.98)


def test_rows_keep_each_inputs_token_count_and_encode_it():
    out = rows([QUERY, DOC], request())
    assert [np.asarray(m).shape for m in out] == [(2, 2), (3, 2)]
    (packed,) = rows([DOC], request(encoding_format="base64"))
    assert np.array_equal(np.frombuffer(base64.b64decode(packed), "<f4").reshape(3, 2), DOC)
    (int8,) = rows([DOC], request(embedding_type="int8"))
    assert int8.tolist() == [[0, 127], [102, 76], [127, 0]]


def test_float16_rows_and_bytes_are_half_precision():
    (half,) = rows([DOC], request(embedding_type="float16"))
    assert half.dtype == np.float16 and np.array_equal(half, DOC.astype(np.float16))
    (packed,) = rows([DOC], request(embedding_type="float16", encoding_format="base64"))
    raw = np.frombuffer(base64.b64decode(packed), "<f2").reshape(3, 2)
    assert np.array_equal(raw, DOC.astype(np.float16))
