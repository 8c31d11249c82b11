"""Per-model settings: MODEL_NAMES, BATCH_SIZES, DTYPES and the other `;`-lists, checked
against each other and expanded into one ModelSpec per configured model."""

from __future__ import annotations

import re
from typing import Annotated, NamedTuple, Protocol

from pydantic import ValidationInfo
from pydantic_settings import NoDecode

from handlers.settings_error import invalid

__all__ = [
    "BUNDLED_MODEL_ID",
    "DTYPES",
    "MODEL_ALLOWED",
    "ONNX_DTYPES",
    "ModelLists",
    "ModelSpec",
    "SemiList",
    "check",
    "expand",
    "known_dtypes",
    "positive_ints",
    "split",
]

BUNDLED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DTYPE_ALIASES = {"fp16": "float16", "fp32": "float32", "bf16": "bfloat16"}
DTYPES = ("auto", "float32", "float16", "bfloat16", "fp8", "int8")
ONNX_DTYPES = ("auto", "float32", "int8")  # what BACKEND=optimum can serve on CPU
# What each per-model field allows, in words (Settings' ALLOWED has the others).
MODEL_ALLOWED = {
    "model_names": "';'-separated Hugging Face ids or local folders, no empty entries",
    "model_name": "a Hugging Face id or a local folder",
    "served_model_names": "';'-separated model ids, one per model, no empty entries",
    "batch_sizes": "';'-separated integers >= 1, one value or one per model",
    "max_batch_tokens": "';'-separated integers >= 1, one value or one per model",
    "dtypes": f"';'-separated {', '.join(DTYPES)} (aliases: {', '.join(DTYPE_ALIASES)}), "
    "one value or one per model",
    "default_prompt_names": "';'-separated prompt names of the models' sentence-transformers "
    "config, or none, one value or one per model",
}

SemiList = Annotated[tuple[str, ...], NoDecode]

# The typical input length MAX_BATCH_TOKENS defaults to per BATCH_SIZES item: a batch of
# one-sentence queries is bounded by its size, one of long chunks by its tokens.
TOKENS_PER_ITEM = 128


class ModelSpec(NamedTuple):
    """One configured model."""

    path: str
    served_id: str
    batch_size: int
    dtype: str
    revision: str | None = None
    # The prompt name applied when a request names none: None when DEFAULT_PROMPT_NAMES is
    # unset (the model's own default_prompt_name, as sentence-transformers applies it),
    # '' for `none` (no default prompt).
    default_prompt: str | None = None
    # A batch's padded tokens (longest input x size): MAX_BATCH_TOKENS, by default
    # batch_size x TOKENS_PER_ITEM.
    max_batch_tokens: int = 0


class ModelLists(Protocol):
    """The per-model settings as Settings holds them: each `;`-list split and checked."""

    @property
    def model_paths(self) -> tuple[str, ...]: ...
    @property
    def uses_bundled_model(self) -> bool: ...
    @property
    def served_model_names(self) -> tuple[str, ...]: ...
    @property
    def batch_sizes(self) -> tuple[str, ...]: ...
    @property
    def max_batch_tokens(self) -> tuple[str, ...]: ...
    @property
    def dtypes(self) -> tuple[str, ...]: ...
    @property
    def model_revisions(self) -> tuple[str, ...]: ...
    @property
    def default_prompt_names(self) -> tuple[str, ...]: ...


def split(value: object) -> object:
    """`a; b` -> ("a", "b"); an empty value or an empty entry is an error."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        raise ValueError("is empty")
    parts = tuple(part.strip() for part in value.split(";"))
    if not all(parts):
        raise ValueError("has an empty entry")
    return parts


def positive_ints(value: tuple[str, ...]) -> tuple[str, ...]:
    """BATCH_SIZES, MAX_BATCH_TOKENS: every entry an integer >= 1."""
    for item in value:
        if not re.fullmatch(r"[0-9]+", item) or int(item) == 0:
            raise ValueError(f"entry {item!r} is not an integer >= 1")
    return value


def known_dtypes(value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
    """DTYPES: every entry in DTYPES (or an alias), and in ONNX_DTYPES with BACKEND=optimum."""
    for item in value:
        if _dtype(item) not in DTYPES:
            raise ValueError(f"unknown dtype {item!r}")
        if info.data.get("backend") == "optimum" and _dtype(item) not in ONNX_DTYPES:
            problem = f"{item!r} is not available with BACKEND=optimum"
            raise invalid("DTYPES", value, problem, ", ".join(ONNX_DTYPES))
    return value


def _dtype(name: str) -> str:
    """A DTYPES entry in its canonical spelling (aliases resolved, lower case)."""
    return DTYPE_ALIASES.get(name.lower(), name.lower())


def _prompt(name: str) -> str:
    """A DEFAULT_PROMPT_NAMES entry: `none` (any case) means no default prompt ('')."""
    return "" if name.lower() == "none" else name


def check(lists: ModelLists) -> None:
    """Each list has one entry per model (or one for all, where allowed), and the served ids
    are unique.

    Raises:
        SettingsError: the first list that does not fit, as one line.
    """
    n = len(lists.model_paths)
    checks = (
        ("SERVED_MODEL_NAMES", lists.served_model_names, {n}),
        ("BATCH_SIZES", lists.batch_sizes, {1, n}),
        ("MAX_BATCH_TOKENS", lists.max_batch_tokens, {1, n}),
        ("DTYPES", lists.dtypes, {1, n}),
        ("MODEL_REVISIONS", lists.model_revisions, {1, n}),
        ("DEFAULT_PROMPT_NAMES", lists.default_prompt_names, {1, n}),
    )
    for name, values, counts in checks:
        if values and len(values) not in counts:
            problem = f"{len(values)} entries for {n} configured model(s)"
            allowed = " or ".join(map(str, sorted(counts))) + " entries"
            raise invalid(name, values, problem, allowed)
    served = tuple(spec.served_id for spec in expand(lists))
    if len(set(served)) != len(served):
        name = "SERVED_MODEL_NAMES" if lists.served_model_names else "MODEL_NAMES"
        raise invalid(name, served, "served model ids repeat", "unique ids")


def expand(lists: ModelLists) -> tuple[ModelSpec, ...]:
    """The configured models with per-model values expanded."""
    paths = lists.model_paths
    if lists.served_model_names:
        served = lists.served_model_names
    elif lists.uses_bundled_model:
        served = (BUNDLED_MODEL_ID,)
    else:
        served = paths

    def pick(values: tuple[str, ...], i: int) -> str:
        return values[i] if len(values) > 1 else values[0]

    def spec(i: int, path: str) -> ModelSpec:
        batch = int(pick(lists.batch_sizes, i))
        tokens = lists.max_batch_tokens
        return ModelSpec(
            path,
            served[i],
            batch,
            _dtype(pick(lists.dtypes, i)),
            pick(lists.model_revisions, i) if lists.model_revisions else None,
            _prompt(pick(lists.default_prompt_names, i)) if lists.default_prompt_names else None,
            int(pick(tokens, i)) if tokens else batch * TOKENS_PER_ITEM,
        )

    return tuple(spec(i, path) for i, path in enumerate(paths))
