"""BACKEND=ctranslate2: which models Infinity's CTranslate2 engine runs, and the lock its
conversion cache needs."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from handlers.engine.conversion import held, non_text_kind, read_config, resolve

__all__ = ["ENCODERS", "conversion_lock", "unsupported"]

log = logging.getLogger(__name__)

# The encoder architectures (config.json model_type) CTranslate2 converts and
# ctranslate2.Encoder runs; Infinity's engine wraps them as sentence-transformers.
ENCODERS = ("bert", "camembert", "distilbert", "roberta", "xlm-roberta")
LOCK_FILE = "ctranslate2.lock"  # beside Infinity's ctranslate2_<version>/ folders
# CTranslate2 4.8's converters of these read `position_embedding_type` from the config (and
# take only "absolute"); transformers 5 no longer writes it, so a model saved with
# transformers 5 does not convert (hub repositories saved before it carry the key).
POSITION_TYPE_READ = ("bert", "camembert", "roberta", "xlm-roberta")


def unsupported(path: str, revision: str | None) -> str | None:
    """Why the CTranslate2 engine cannot serve the model at `path`; None when it can."""
    config = read_config(resolve(path, revision))
    if kind := non_text_kind(config):
        return f"the CTranslate2 engine serves text embedders only, not {kind}"
    if (model_type := config.get("model_type")) not in ENCODERS:
        return f"CTranslate2 converts {', '.join(ENCODERS)} encoders, not {model_type}"
    if model_type in POSITION_TYPE_READ and config.get("position_embedding_type") != "absolute":
        return (
            f"CTranslate2 converts {model_type} models only with position_embedding_type "
            '"absolute" in config.json (transformers 5 no longer saves it)'
        )
    return None


@contextmanager
def conversion_lock(path: str, revision: str | None) -> Iterator[None]:
    """Held around an Infinity CTranslate2 load: on the first start, Infinity converts the
    model into $HF_HUB_CACHE/ctranslate2_<version>/<folder name>/, and workers sharing one
    cache must not convert (or read a half-written conversion) at once. Inside, that
    conversion is Infinity's to reuse only if it was made from this very model (see
    _forget_stale)."""
    from huggingface_hub import constants

    with held(Path(constants.HF_HUB_CACHE) / LOCK_FILE, "CTranslate2 conversion"):
        _forget_stale(resolve(path, revision))
        yield


def _forget_stale(source: Path) -> None:
    """Infinity names a conversion after the model's folder name only, so a model in another
    folder of that name (a model fine-tuned again in place, another project's `model/`)
    would be served from the old conversion, silently wrong. A stamp of the source (its
    path and its files' sizes and times) is kept beside the conversion; one whose stamp
    differs, or that has none, is removed, so Infinity converts this model afresh."""
    import ctranslate2
    from huggingface_hub import constants

    converted = Path(constants.HF_HUB_CACHE) / f"ctranslate2_{ctranslate2.__version__}"
    converted /= source.name
    stamp = converted.with_name(f"{source.name}.source")
    files = sorted(f for f in source.iterdir() if f.is_file())
    made_from = "\n".join(
        [str(source), *(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)]
    )
    if converted.exists() and (not stamp.is_file() or stamp.read_text() != made_from):
        log.warning("removing %s: it was converted from another model", converted)
        shutil.rmtree(converted)
    converted.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(made_from)
