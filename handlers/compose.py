"""The composition root: settings into a core (backend, media), for the service and the worker."""

from __future__ import annotations

import logging

from handlers.core.dispatch import Core
from handlers.engine.backend import EngineBackend
from handlers.engine.infinity import preload_infinity
from handlers.media.fetcher import MediaFetcher
from handlers.model_specs import BUNDLED_MODEL_ID
from handlers.settings import Settings

__all__ = ["build_core"]

log = logging.getLogger(__name__)


def build_core(settings: Settings) -> Core:
    """The request core over one engine backend per configured model and the image
    client; nothing is loaded until `core.start()`. Starts importing Infinity (torch,
    transformers: most of a cold start) in a thread when the backend needs it, so that
    overlaps the transport's own start-up."""
    if settings.backend != "optimum":
        preload_infinity()
    if settings.uses_bundled_model:
        log.info("MODEL_NAMES is unset: serving the bundled %s offline", BUNDLED_MODEL_ID)
    return Core(settings, EngineBackend(settings), MediaFetcher(settings))
