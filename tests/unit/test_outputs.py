"""Which outputs an embeddings request gets (dense, sparse, multi-vector): the model's default,
several of one model, the options each output honours, and each input's reply value."""

from __future__ import annotations

import numpy as np
import pytest

from handlers.core.outputs import chosen, data
from handlers.core.schemas import EmbeddingsRequest
from handlers.engine.seam import SparseVector
from handlers.errors import ServiceError
from handlers.model_info import ModelInfo

DENSE = ModelInfo("dense", frozenset({"embed"}), "fake", 2, 1)
SPLADE = ModelInfo("splade", frozenset({"sparse_embed"}), "fake", None, 1)
COLBERT = ModelInfo(
    "colbert", frozenset({"multi_vector_embed", "rerank"}), "fake", 2, 1, similarity="maxsim"
)
M3 = ModelInfo("m3", frozenset({"embed", "sparse_embed", "multi_vector_embed"}), "fake", 2, 1)
VECTOR = np.array([0.6, 0.8], dtype=np.float32)  # normalised, as models give
TOKENS = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
SPARSE = SparseVector([2, 7], [0.5, 1.5], ["b", "g"])


def request(**fields) -> EmbeddingsRequest:
    return EmbeddingsRequest.model_validate({"model": "m", "input": "a", **fields})


@pytest.mark.parametrize(
    ("info", "outputs"),
    [(DENSE, ("dense",)), (SPLADE, ("sparse",)), (COLBERT, ("multi_vector",)), (M3, ("dense",))],
)
def test_a_request_without_outputs_gets_the_models_default(info, outputs):
    assert chosen(request(), info) == outputs


def test_a_model_of_several_outputs_gives_those_asked_in_their_order():
    assert chosen(request(outputs=["sparse", "dense"]), M3) == ("sparse", "dense")
    assert M3.outputs == ("dense", "sparse", "multi_vector")


@pytest.mark.parametrize(
    ("info", "fields", "param", "fragment"),
    [
        (DENSE, {"outputs": ["sparse"]}, "outputs", "does not give sparse embeddings"),
        (M3, {"outputs": ["dense", "dense"]}, "outputs", "twice"),
        (DENSE, {"sparse_top_k": 3}, "sparse_top_k", "the model gives dense"),
        (M3, {"return_tokens": True}, "return_tokens", "add 'sparse' to outputs"),
        (SPLADE, {"encoding_format": "base64"}, "encoding_format", "for sparse embeddings"),
        (SPLADE, {"normalize": False}, "normalize", "applies to dense vectors only"),
        (COLBERT, {"dimensions": 2}, "dimensions", "for multi-vector (token) vectors"),
        (COLBERT, {"normalize": False}, "normalize", "applies to dense vectors only"),
        (COLBERT, {"truncate": False}, "truncate", "multi-vector encoder"),
        (M3, {"outputs": ["sparse"], "dimensions": 2}, "dimensions", "add 'dense' to outputs"),
        (SPLADE, {"pool_factor": 2}, "pool_factor", "applies to multi-vector"),
    ],
)
def test_what_the_outputs_cannot_honour_is_refused_by_name(info, fields, param, fragment):
    with pytest.raises(ServiceError) as caught:
        chosen(request(**fields), info)
    assert caught.value.param == param and fragment in caught.value.message


def test_options_honoured_by_one_of_several_outputs_pass():
    fields = {"outputs": ["sparse", "multi_vector"], "embedding_type": "int8", "sparse_top_k": 1}
    assert chosen(request(**fields), M3) == ("sparse", "multi_vector")
    assert chosen(request(truncate=False, outputs=["multi_vector"]), M3) == ("multi_vector",)


def test_one_output_is_each_inputs_value_and_several_a_dict_of_each():
    (dense,) = data([VECTOR], ("dense",), request())
    assert dense == pytest.approx([0.6, 0.8])
    (item,) = data(
        [{"sparse": SPARSE, "multi_vector": TOKENS, "dense": VECTOR}],
        ("sparse", "multi_vector", "dense"),
        request(sparse_top_k=1, embedding_type="int8"),
    )
    assert list(item) == ["sparse", "multi_vector", "dense"]
    assert item["sparse"] == {"indices": [7], "values": [1.5]}
    assert np.asarray(item["multi_vector"]).tolist() == [[127, 0], [0, 127]]
    assert np.asarray(item["dense"]).tolist() == [76, 102]  # round(127 * (0.6, 0.8))
