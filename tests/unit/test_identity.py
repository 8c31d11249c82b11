"""Model identity: weight digests by content (Hub snapshot or copy alike), cached once."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from handlers.engine.identity import dtype_class, fingerprint, weights_digest

WEIGHTS = b"\x00\x01weights" * 1000


def test_a_hub_snapshot_and_a_plain_copy_of_the_same_weights_digest_alike(tmp_path: Path):
    blob = tmp_path / "hub" / "blobs" / hashlib.sha256(WEIGHTS).hexdigest()
    blob.parent.mkdir(parents=True)
    blob.write_bytes(WEIGHTS)
    snapshot = tmp_path / "hub" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    os.symlink(blob, snapshot / "model.safetensors")
    (snapshot / "model.onnx").write_bytes(b"an export is never part of the weights")
    copy = tmp_path / "copy"
    (copy / "2_Dense").mkdir(parents=True)
    (copy / "model.safetensors").write_bytes(WEIGHTS)
    assert weights_digest(snapshot, tmp_path / "cache") == weights_digest(copy, tmp_path / "c2")
    (copy / "2_Dense" / "model.safetensors").write_bytes(b"dense")
    assert weights_digest(copy, tmp_path / "c3") != weights_digest(snapshot, tmp_path / "cache")


def test_the_digest_is_computed_once_per_copy(tmp_path: Path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(WEIGHTS)
    first = weights_digest(folder, tmp_path / "cache")
    (cached,) = (tmp_path / "cache").glob("embedding-revisions/*.txt")
    cached.write_text("kept")
    assert weights_digest(folder, tmp_path / "cache") == "kept"
    assert len(first) == 64


def test_dtype_classes_and_fingerprint():
    assert {dtype_class(d) for d in ("auto", "float32", "float16", "bfloat16")} == {"float"}
    assert dtype_class("int8") == "int8" and dtype_class("fp8") == "fp8"
    a = fingerprint(weights="w", pooling="mean", dtype="float")
    assert a == fingerprint(dtype="float", pooling="mean", weights="w") and len(a) == 16
    assert a != fingerprint(weights="w", pooling="cls", dtype="float")
