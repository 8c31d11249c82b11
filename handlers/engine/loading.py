"""Loading one configured model: the backend it runs on (an ONNX export, a CTranslate2
conversion or torch, each fallback with its reason) and its identity (ModelInfo)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from handlers.engine import (
    adapters,
    audio,
    bge_m3,
    classifier,
    ct2,
    identity,
    llm_reranker,
    multi_vector,
    pipeline,
    sparse,
    st_runner,
)
from handlers.engine import onnx_plan as onnx
from handlers.engine.infinity import Loaded, load_infinity
from handlers.model_info import ModelInfo
from handlers.model_specs import ModelSpec
from handlers.settings import Settings
from handlers.settings_error import SettingsError

__all__ = ["ModelLoadError", "describe", "load"]

log = logging.getLogger(__name__)


class ModelLoadError(Exception):
    """A configured model could not be loaded; the message names it and says why."""


def load(spec: ModelSpec, settings: Settings) -> Loaded:
    """Load one model (blocking; see _load).

    Raises:
        ModelLoadError: anything failed, as one line naming the model and why.
    """
    try:
        return _load(spec, settings)
    except Exception as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise ModelLoadError(
            f"model {spec.served_id} ({spec.path}) could not be loaded with "
            f"BACKEND={settings.backend}: {type(exc).__name__}: {why}"
        ) from exc


def _load(spec: ModelSpec, settings: Settings) -> Loaded:
    """Load one model. With BACKEND=optimum an embedder is exported to ONNX once (see
    onnx.plan) and run by onnxruntime; with BACKEND=ctranslate2 an encoder embedder is
    converted once by Infinity, under a cross-process lock. Other models, those with
    task adapters, classifiers, audio models, sparse and multi-vector encoders, BGE-M3-style
    models (their sparse and ColBERT heads), causal-LM rerankers and those whose conversion
    fails, run on torch, with a log line."""
    backend = settings.backend
    reason: str | None
    names = adapters.find(identity.source_folder(spec.path, spec.revision)[0])
    found = classifier.classes(spec.path, spec.revision)
    if found is not None:
        if backend != "torch":
            log.warning("model %s: classifiers run on torch; BACKEND=torch", spec.served_id)
        return classifier.load(spec, settings, found)
    if audio.is_audio_model(spec.path, spec.revision):
        if backend != "torch":
            log.warning("model %s: audio models run on torch; BACKEND=torch", spec.served_id)
        return audio.load(spec, settings)
    saved_as = identity.saved_model_type(spec.path, spec.revision)
    by_library = {"SparseEncoder": sparse.load, "MultiVectorEncoder": multi_vector.load}
    if bge_m3.has_heads(spec.path, spec.revision):
        saved_as = "model with BGE-M3 heads"
        by_library[saved_as] = bge_m3.load
    if saved_as == "CrossEncoder" and classifier.is_causal_lm(spec.path, spec.revision):
        by_library["CrossEncoder"] = llm_reranker.load
    if saved_as in by_library:
        if backend != "torch":
            log.warning("model %s: a %s runs on torch; BACKEND=torch", spec.served_id, saved_as)
        return by_library[saved_as](spec, settings)
    if backend != "torch" and names:
        reason = f"its task adapters ({', '.join(names)}) are applied on torch only"
    elif backend == "optimum":
        root = onnx.cache_root(settings.hf_home)
        decision = onnx.plan(spec.path, spec.served_id, spec.dtype, root)
        if isinstance(decision, onnx.OnnxPlan):
            log.info(
                "model %s: ONNX %s from %s, %s pooling, %d Dense layers",
                spec.served_id,
                decision.precision,
                decision.folder,
                decision.pooling,
                len(decision.dense),
            )
            from handlers.engine.onnx_runner import OnnxEmbedder

            runner = OnnxEmbedder(decision)
            dtype = "float32" if decision.precision == "fp32" else decision.precision
            embeds = frozenset({"embed"})
            return Loaded([runner], embeds, backend, runner.tokenizer, dtype, collates=True)
        reason = decision
    elif backend == "ctranslate2":
        reason = ct2.unsupported(spec.path, spec.revision)
        if reason is None:
            try:
                with ct2.conversion_lock(spec.path, spec.revision):
                    return load_infinity(spec, settings, backend)
            except Exception as exc:  # CTranslate2's converter refused this checkpoint
                log.debug("CTranslate2 load of %s failed", spec.served_id, exc_info=True)
                why = " ".join(str(exc).split()) or type(exc).__name__
                reason = f"the CTranslate2 conversion failed: {type(exc).__name__}: {why}"
    else:
        return _load_torch(spec, settings)
    log.warning("model %s: %s; serving it with BACKEND=torch", spec.served_id, reason)
    return _load_torch(spec, settings)


def _load_torch(spec: ModelSpec, settings: Settings) -> Loaded:
    """On torch: a multimodal sentence-transformers pipeline (images as tokens of its
    encoder) by sentence-transformers 6 itself; every other model by Infinity's loader."""
    if st_runner.is_multimodal_pipeline(spec.path, spec.revision):
        log.info("model %s: run by sentence-transformers (multimodal)", spec.served_id)
        return st_runner.load(spec, settings)
    return load_infinity(spec, settings, "torch")


def describe(spec: ModelSpec, model: Loaded, settings: Settings) -> ModelInfo:
    """The model's identity (blocking: may hash its weights once).

    Raises:
        SettingsError: DEFAULT_PROMPT_NAMES names a prompt the model does not define.
    """
    source, commit = identity.source_folder(spec.path, spec.revision)
    prompts = identity.prompts(source)
    default = spec.default_prompt
    if default is None:  # DEFAULT_PROMPT_NAMES unset: the model's own, if it names one
        default = identity.default_prompt_name(source)
    elif default and default not in prompts:
        raise SettingsError(
            f"DEFAULT_PROMPT_NAMES: model {spec.served_id} has no prompt "
            f"{spec.default_prompt!r}; its prompts: {', '.join(prompts) or 'none'}"
        )
    default = default if default in prompts else None
    digest = None
    if source is not None:
        digest = identity.weights_digest(source, onnx.cache_root(settings.hf_home).parent)
    embeds_text = model.capabilities - {"sparse_embed", "multi_vector_embed"} == {"embed"}
    modules = pipeline.describe(source) if source is not None and embeds_text else None
    pooling = pipeline.pooling(source) if modules and source is not None else None
    info = ModelInfo(
        spec.served_id,
        model.capabilities,
        model.backend,
        None,
        int(time.time()),
        max_input_tokens=model.max_length,
        dtype=model.dtype,
        revision=commit or (f"sha256:{digest[:16]}" if digest else spec.revision),
        pooling=pooling,
        prompts=prompts,
        default_prompt_name=default,
        adapters=model.adapters,
        classes=model.classes,
        similarity=model.similarity,
        audio=model.audio,
    )
    if not model.capabilities & {"embed", "sparse_embed", "multi_vector_embed"}:
        return info
    space = identity.fingerprint(
        weights=digest or f"{spec.path}@{spec.revision}",
        pooling=pooling,
        modules=modules,
        normalized=True,
        max_length=model.max_length,
        default_prompt=prompts.get(default or ""),
        dtype=identity.dtype_class(spec.dtype),
    )
    return replace(info, fingerprint=space)
