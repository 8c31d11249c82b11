"""huggingface_hub, as the engine finds, downloads and caches models, at the pinned version."""

from __future__ import annotations

import inspect

from tests.contract.pins import assert_pinned


def test_the_installed_version_is_the_pin():
    assert_pinned("huggingface-hub")


def test_the_functions_and_constants_we_use():
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import EntryNotFoundError

    assert isinstance(constants.HF_HOME, str) and isinstance(constants.HF_HUB_CACHE, str)
    download = inspect.signature(huggingface_hub.hf_hub_download).parameters
    assert list(download)[:2] == ["repo_id", "filename"] and "revision" in download
    snapshot = inspect.signature(huggingface_hub.snapshot_download).parameters
    assert {"repo_id", "revision", "allow_patterns"} <= set(snapshot)
    cached = inspect.signature(huggingface_hub.try_to_load_from_cache).parameters
    assert list(cached)[:2] == ["repo_id", "filename"] and "revision" in cached
    assert issubclass(EntryNotFoundError, Exception)


def test_a_file_not_in_the_cache_is_none(tmp_path):
    from huggingface_hub import try_to_load_from_cache

    assert try_to_load_from_cache("no/such-model", "config.json", cache_dir=tmp_path) is None
