"""docs/models.md's family table is the test matrix's (tests.matrix): regenerate it with
`python -m tests.matrix` when a family or a fallback changes."""

from __future__ import annotations

from tests import matrix
from tests.families import FAMILIES


def test_the_documented_table_is_the_matrix():
    assert matrix.documented() == matrix.table()


def test_every_family_has_a_title_and_an_outcome_on_every_backend():
    assert set(matrix.TITLES) == set(FAMILIES)
    for name in FAMILIES:
        for backend in matrix.BACKENDS:
            runs_on, reason = matrix.outcome(name, backend)
            assert (runs_on == backend) == (reason is None), (name, backend)


def test_no_family_is_both_native_and_fallen_back():
    assert not set(matrix.ONNX_FAMILIES) & set(matrix.ONNX_FALLBACKS)
    assert not set(matrix.CT2_FAMILIES) & set(matrix.CT2_FALLBACKS)
