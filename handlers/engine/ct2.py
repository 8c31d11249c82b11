"""BACKEND=ctranslate2: which models Infinity's CTranslate2 engine runs, and the lock its
conversion cache needs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from handlers.engine.conversion import held, non_text_kind, read_config, resolve

__all__ = ["ENCODERS", "conversion_lock", "unsupported"]

# The encoder architectures (config.json model_type) CTranslate2 converts and
# ctranslate2.Encoder runs; Infinity's engine wraps them as sentence-transformers.
ENCODERS = ("bert", "camembert", "distilbert", "roberta", "xlm-roberta")
LOCK_FILE = "ctranslate2.lock"  # beside Infinity's ctranslate2_<version>/ folders


def unsupported(path: str, revision: str | None) -> str | None:
    """Why the CTranslate2 engine cannot serve the model at `path`; None when it can."""
    config = read_config(resolve(path, revision))
    if kind := non_text_kind(config):
        return f"the CTranslate2 engine serves text embedders only, not {kind}"
    if (model_type := config.get("model_type")) not in ENCODERS:
        return f"CTranslate2 converts {', '.join(ENCODERS)} encoders, not {model_type}"
    return None


@contextmanager
def conversion_lock() -> Iterator[None]:
    """Held around an Infinity CTranslate2 load: on the first start, Infinity converts the
    model in place into $HF_HUB_CACHE/ctranslate2_<version>/<folder name>/, and workers
    sharing one cache must not convert (or read a half-written conversion) at once."""
    from huggingface_hub import constants

    with held(Path(constants.HF_HUB_CACHE) / LOCK_FILE, "CTranslate2 conversion"):
        yield
