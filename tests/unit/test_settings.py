"""Settings: defaults, per-model expansion, validation errors as one line, HF cache default."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from handlers.settings import BUNDLED_MODEL_ID, SettingsError, load_settings


def test_defaults_serve_the_bundled_model():
    settings = load_settings({})
    assert settings.uses_bundled_model
    (spec,) = settings.models
    assert spec.served_id == BUNDLED_MODEL_ID
    assert spec.path.endswith("model")
    assert (spec.batch_size, spec.dtype) == (32, "auto")
    assert settings.backend == "torch"
    assert settings.infinity_queue_size == 48000
    assert settings.runpod_max_concurrency == 300
    assert settings.max_image_bytes == 20971520
    assert settings.max_client_batch_size == 2048
    assert (settings.infinity_host, settings.infinity_port) == ("0.0.0.0", 7997)
    assert settings.http_client_allow_private_networks is False
    assert settings.api_key is None


def test_lists_expand_per_model_and_aliases_normalise():
    settings = load_settings(
        {
            "MODEL_NAMES": "a/b; /models/c",
            "SERVED_MODEL_NAMES": "x;y",
            "BATCH_SIZES": "8;16",
            "DTYPES": "fp16",
            "BACKEND": "ctranslate2",
            "MODEL_REVISIONS": "main;abc123",
        }
    )
    assert [tuple(m) for m in settings.models] == [
        ("a/b", "x", 8, "float16", "main"),
        ("/models/c", "y", 16, "float16", "abc123"),
    ]
    assert settings.backend == "ctranslate2"


def test_served_names_default_to_model_entries_and_legacy_model_name():
    assert [m.served_id for m in load_settings({"MODEL_NAMES": "a/b;c/d"}).models] == ["a/b", "c/d"]
    legacy = load_settings({"MODEL_NAME": "BAAI/bge-small-en-v1.5"})
    assert [m.served_id for m in legacy.models] == ["BAAI/bge-small-en-v1.5"]
    both = load_settings({"MODEL_NAME": "ignored/x", "MODEL_NAMES": "used/y"})
    assert [m.path for m in both.models] == ["used/y"]


def test_settings_are_frozen_and_secret_hidden():
    settings = load_settings({"API_KEY": "s3cret"})
    with pytest.raises(ValidationError):
        settings.backend = "optimum"  # type: ignore[misc]
    assert "s3cret" not in repr(settings)
    assert settings.api_key.get_secret_value() == "s3cret"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"BATCH_SIZES": "0"}, "BATCH_SIZES='0'"),
        ({"BATCH_SIZES": "a"}, "BATCH_SIZES='a'"),
        ({"BACKEND": "tensorflow"}, "BACKEND='tensorflow'"),
        ({"DTYPES": "int4"}, "DTYPES='int4'"),
        ({"INFINITY_QUEUE_SIZE": "-1"}, "INFINITY_QUEUE_SIZE='-1'"),
        ({"HTTP_CLIENT_TIMEOUT": "nan"}, "HTTP_CLIENT_TIMEOUT='nan'"),
        ({"INFINITY_PORT": "70000"}, "INFINITY_PORT='70000'"),
        ({"HTTP_CLIENT_ALLOW_PRIVATE_NETWORKS": "maybe"}, "HTTP_CLIENT_ALLOW_PRIVATE_NETWORKS"),
        ({"MODEL_NAMES": "a;b", "SERVED_MODEL_NAMES": "x"}, "SERVED_MODEL_NAMES has 1"),
        ({"MODEL_NAMES": "a;b;c", "BATCH_SIZES": "1;2"}, "BATCH_SIZES has 2"),
        ({"MODEL_NAMES": "a;a"}, "unique"),
    ],
)
def test_bad_values_fail_with_one_clear_line(env, fragment):
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_hf_home_defaults_to_the_runpod_volume_when_present(monkeypatch):
    monkeypatch.setattr("handlers.settings.os.path.isdir", lambda p: p == "/runpod-volume")
    assert load_settings({}).hf_home == "/runpod-volume/huggingface-cache"
    assert load_settings({"HF_HOME": "/cache"}).hf_home == "/cache"
    monkeypatch.setattr("handlers.settings.os.path.isdir", lambda p: False)
    assert load_settings({}).hf_home is None


def test_serve_command_exits_with_one_line_on_bad_config():
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "handlers.serve"],
        env={"BATCH_SIZES": "zero", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0
    assert "BATCH_SIZES='zero'" in proc.stderr


def test_server_options_default_to_lean_and_parse_booleans():
    assert (load_settings({}).access_log, load_settings({}).prometheus_metrics) == (False, True)
    chosen = load_settings({"ACCESS_LOG": "true", "PROMETHEUS_METRICS": "0"})
    assert (chosen.access_log, chosen.prometheus_metrics) == (True, False)
    with pytest.raises(SettingsError, match="ACCESS_LOG"):
        load_settings({"ACCESS_LOG": "loud"})


def test_process_environment_is_parsed_once(monkeypatch):
    import handlers.settings as module

    monkeypatch.setattr(module, "_from_process_env", None)
    monkeypatch.setenv("BATCH_SIZES", "7")
    first = load_settings()
    monkeypatch.setenv("BATCH_SIZES", "9")
    assert load_settings() is first and first.models[0].batch_size == 7
    assert load_settings({"BATCH_SIZES": "9"}).models[0].batch_size == 9
