"""Settings: defaults, per-model expansion, validation errors as one line, nothing written back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from handlers.model_specs import BUNDLED_MODEL_ID
from handlers.settings import load_settings
from handlers.settings_error import SettingsError

ROOT = Path(__file__).resolve().parents[2]


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
            "DEFAULT_PROMPT_NAMES": "query;None",
        }
    )
    assert [tuple(m) for m in settings.models] == [
        ("a/b", "x", 8, "float16", "main", "query", 8 * 128),
        ("/models/c", "y", 16, "float16", "abc123", "", 16 * 128),
    ]
    assert settings.backend == "ctranslate2"


def test_max_batch_tokens_per_model_or_derived_from_the_batch_size():
    one = load_settings({"MODEL_NAMES": "a;b", "BATCH_SIZES": "8;64", "MAX_BATCH_TOKENS": "5000"})
    assert [m.max_batch_tokens for m in one.models] == [5000, 5000]
    each = load_settings({"MODEL_NAMES": "a;b", "MAX_BATCH_TOKENS": "100;200"})
    assert [m.max_batch_tokens for m in each.models] == [100, 200]
    for bad in ("0", "1;2;3", "many"):
        with pytest.raises(SettingsError, match="MAX_BATCH_TOKENS"):
            load_settings({"MODEL_NAMES": "a;b", "MAX_BATCH_TOKENS": bad})


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


# (environment, how the one line starts: the variable and the value as given, what is allowed)
BAD = [
    ({"MODEL_NAMES": ""}, "MODEL_NAMES=''", "Hugging Face ids or local folders"),
    ({"MODEL_NAMES": ";"}, "MODEL_NAMES=';'", "no empty entries"),
    ({"MODEL_NAMES": "a;;b"}, "MODEL_NAMES='a;;b'", "no empty entries"),
    ({"MODEL_NAME": " "}, "MODEL_NAME=' '", "a Hugging Face id or a local folder"),
    ({"SERVED_MODEL_NAMES": ""}, "SERVED_MODEL_NAMES=''", "one per model"),
    ({"SERVED_MODEL_NAMES": " ; "}, "SERVED_MODEL_NAMES=' ; '", "one per model"),
    ({"MODEL_NAMES": "a;b", "SERVED_MODEL_NAMES": "x"}, "SERVED_MODEL_NAMES='x'", "2 entries"),
    ({"MODEL_NAMES": "a;a"}, "MODEL_NAMES='a;a'", "unique ids"),
    ({"MODEL_NAMES": "a;b", "SERVED_MODEL_NAMES": "x;x"}, "SERVED_MODEL_NAMES='x;x'", "unique"),
    ({"BATCH_SIZES": ""}, "BATCH_SIZES=''", "integers >= 1"),
    ({"BATCH_SIZES": " "}, "BATCH_SIZES=' '", "integers >= 1"),
    ({"BATCH_SIZES": "0"}, "BATCH_SIZES='0'", "integers >= 1"),
    ({"BATCH_SIZES": "-4"}, "BATCH_SIZES='-4'", "integers >= 1"),
    ({"BATCH_SIZES": "a"}, "BATCH_SIZES='a'", "integers >= 1"),
    ({"BATCH_SIZES": "8.5"}, "BATCH_SIZES='8.5'", "integers >= 1"),
    ({"BATCH_SIZES": "\u00b2"}, "BATCH_SIZES='\u00b2'", "integers >= 1"),
    ({"BATCH_SIZES": "8;"}, "BATCH_SIZES='8;'", "integers >= 1"),
    ({"MODEL_NAMES": "a;b;c", "BATCH_SIZES": "1;2"}, "BATCH_SIZES='1;2'", "1 or 3 entries"),
    ({"DTYPES": " ; "}, "DTYPES=' ; '", "float32"),
    ({"DTYPES": ""}, "DTYPES=''", "float32"),
    ({"DTYPES": "int4"}, "DTYPES='int4'", "float32"),
    ({"MODEL_NAMES": "a;b;c", "DTYPES": "fp16;auto"}, "DTYPES='fp16;auto'", "1 or 3 entries"),
    ({"BACKEND": "optimum", "DTYPES": "fp16"}, "DTYPES='fp16'", "auto, float32, int8"),
    ({"BACKEND": ""}, "BACKEND=''", "torch, optimum, ctranslate2"),
    ({"BACKEND": "tensorflow"}, "BACKEND='tensorflow'", "torch, optimum, ctranslate2"),
    ({"INFINITY_QUEUE_SIZE": "-1"}, "INFINITY_QUEUE_SIZE='-1'", "an integer >= 1"),
    ({"INFINITY_QUEUE_SIZE": ""}, "INFINITY_QUEUE_SIZE=''", "an integer >= 1"),
    ({"RUNPOD_MAX_CONCURRENCY": "0"}, "RUNPOD_MAX_CONCURRENCY='0'", "an integer >= 1"),
    ({"RUNPOD_MAX_CONCURRENCY": "inf"}, "RUNPOD_MAX_CONCURRENCY='inf'", "an integer >= 1"),
    ({"HTTP_CLIENT_USER_AGENT": "  "}, "HTTP_CLIENT_USER_AGENT='  '", "non-blank"),
    ({"HTTP_CLIENT_TIMEOUT": "nan"}, "HTTP_CLIENT_TIMEOUT='nan'", "a finite number > 0"),
    ({"HTTP_CLIENT_TIMEOUT": "inf"}, "HTTP_CLIENT_TIMEOUT='inf'", "a finite number > 0"),
    ({"HTTP_CLIENT_TIMEOUT": "0"}, "HTTP_CLIENT_TIMEOUT='0'", "a finite number > 0"),
    ({"HTTP_CLIENT_TIMEOUT": "ten"}, "HTTP_CLIENT_TIMEOUT='ten'", "a finite number > 0"),
    ({"HTTP_CLIENT_MAX_CONNECTIONS": "0"}, "HTTP_CLIENT_MAX_CONNECTIONS='0'", "integer >= 1"),
    (
        {"HTTP_CLIENT_MAX_KEEPALIVE_CONNECTIONS": "-1"},
        "HTTP_CLIENT_MAX_KEEPALIVE_CONNECTIONS='-1'",
        "an integer >= 0",
    ),
    (
        {"HTTP_CLIENT_MAX_CONNECTIONS": "4", "HTTP_CLIENT_MAX_KEEPALIVE_CONNECTIONS": "8"},
        "HTTP_CLIENT_MAX_KEEPALIVE_CONNECTIONS='8'",
        "0 to 4",
    ),
    (
        {"HTTP_CLIENT_ALLOW_PRIVATE_NETWORKS": "maybe"},
        "HTTP_CLIENT_ALLOW_PRIVATE_NETWORKS='maybe'",
        "true or false",
    ),
    ({"MAX_IMAGE_BYTES": "0"}, "MAX_IMAGE_BYTES='0'", "an integer >= 1"),
    ({"MAX_IMAGE_BYTES": "20MB"}, "MAX_IMAGE_BYTES='20MB'", "an integer >= 1"),
    ({"MAX_CLIENT_BATCH_SIZE": "-5"}, "MAX_CLIENT_BATCH_SIZE='-5'", "an integer >= 1"),
    ({"MAX_REQUEST_BYTES": "1e6"}, "MAX_REQUEST_BYTES='1e6'", "an integer >= 1"),
    ({"MAX_TOTAL_CHARS": "0"}, "MAX_TOTAL_CHARS='0'", "an integer >= 1"),
    ({"SHUTDOWN_DRAIN_SECONDS": "-1"}, "SHUTDOWN_DRAIN_SECONDS='-1'", "a finite number >= 0"),
    ({"SHUTDOWN_DRAIN_SECONDS": "inf"}, "SHUTDOWN_DRAIN_SECONDS='inf'", "a finite number"),
    ({"SHUTDOWN_TIMEOUT": "0"}, "SHUTDOWN_TIMEOUT='0'", "an integer >= 1"),
    ({"ACCESS_LOG": "loud"}, "ACCESS_LOG='loud'", "true or false"),
    ({"PROMETHEUS_METRICS": ""}, "PROMETHEUS_METRICS=''", "true or false"),
    ({"INFINITY_HOST": "localhost"}, "INFINITY_HOST='localhost'", "an IP address"),
    ({"INFINITY_HOST": "0.0.0.0:80"}, "INFINITY_HOST='0.0.0.0:80'", "an IP address"),
    ({"INFINITY_HOST": ""}, "INFINITY_HOST=''", "an IP address"),
    ({"INFINITY_PORT": "0"}, "INFINITY_PORT='0'", "an integer >= 1 and <= 65535"),
    ({"INFINITY_PORT": "70000"}, "INFINITY_PORT='70000'", "an integer >= 1 and <= 65535"),
    ({"INFINITY_PORT": "http"}, "INFINITY_PORT='http'", "an integer >= 1 and <= 65535"),
    ({"HF_HOME": ""}, "HF_HOME=''", "a folder path"),
    ({"DEFAULT_PROMPT_NAMES": "query;"}, "DEFAULT_PROMPT_NAMES='query;'", "or none"),
    (
        {"MODEL_NAMES": "a/b", "DEFAULT_PROMPT_NAMES": "query;none"},
        "DEFAULT_PROMPT_NAMES='query;none'",
        "1 entries",
    ),
]


@pytest.mark.parametrize(("env", "start", "allowed"), BAD, ids=[b[1] for b in BAD])
def test_bad_values_fail_with_one_line_naming_variable_value_and_what_is_allowed(
    env, start, allowed
):
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    message = str(info.value)
    assert message.startswith(f"{start}: "), message
    assert "; allowed: " in message and allowed in message.split("; allowed: ", 1)[1]
    assert "\n" not in message


def test_a_bad_api_key_is_named_but_not_shown():
    with pytest.raises(SettingsError) as info:
        load_settings({"API_KEY": "s3cret\n"})
    assert str(info.value).startswith("API_KEY=<hidden>: has leading or trailing whitespace")
    assert "s3cret" not in str(info.value)


def test_edge_values_that_are_fine():
    settings = load_settings(
        {
            "MODEL_NAMES": " a/b ; c/d ",
            "DTYPES": "FP16; int8",
            "INFINITY_HOST": "::",
            "INFINITY_PORT": "65535",
            "API_KEY": "",
            "SHUTDOWN_DRAIN_SECONDS": "0",
            "HTTP_CLIENT_MAX_KEEPALIVE_CONNECTIONS": "0",
        }
    )
    assert [(m.path, m.dtype) for m in settings.models] == [("a/b", "float16"), ("c/d", "int8")]
    assert (settings.infinity_host, settings.infinity_port, settings.api_key) == ("::", 65535, None)


def test_settings_are_never_written_back_to_the_environment(monkeypatch):
    """HF_HOME is the environment's own (huggingface_hub and Infinity read it there): no
    default is invented, and loading the process's settings writes nothing."""
    import handlers.settings

    monkeypatch.setattr(handlers.settings, "_from_process_env", None)
    for name in ("HF_HOME", "MODEL_NAMES", "BATCH_SIZES"):
        monkeypatch.delenv(name, raising=False)
    before = dict(os.environ)
    assert load_settings().hf_home is None
    assert dict(os.environ) == before
    assert load_settings({"HF_HOME": "/cache"}).hf_home == "/cache"


@pytest.mark.slow  # a subprocess per entry point
@pytest.mark.parametrize(
    "command", [("-m", "handlers.serve"), ("-m", "runpod_adapter"), ("-m", "bentoml", "serve", ".")]
)
@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"BATCH_SIZES": ""}, "configuration error: BATCH_SIZES='': is empty; allowed: "),
        ({"DTYPES": " ; "}, "configuration error: DTYPES=' ; ': has an empty entry; allowed: "),
        ({"MODEL_NAMES": ";"}, "configuration error: MODEL_NAMES=';': has an empty entry; "),
        ({"INFINITY_HOST": "localhost"}, "configuration error: INFINITY_HOST='localhost': "),
    ],
)
def test_entry_points_exit_with_the_one_line(command, env, line, tmp_path):
    proc = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env={**env, "PATH": "", "BENTOML_HOME": str(tmp_path), "BENTOML_DO_NOT_TRACK": "true"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert proc.stderr.startswith(line) and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_server_options_default_to_lean_and_parse_booleans():
    assert (load_settings({}).access_log, load_settings({}).prometheus_metrics) == (False, True)
    chosen = load_settings({"ACCESS_LOG": "true", "PROMETHEUS_METRICS": "0"})
    assert (chosen.access_log, chosen.prometheus_metrics) == (True, False)


def test_process_environment_is_parsed_once(monkeypatch):
    import handlers.settings as module

    monkeypatch.setattr(module, "_from_process_env", None)
    monkeypatch.setenv("BATCH_SIZES", "7")
    first = load_settings()
    monkeypatch.setenv("BATCH_SIZES", "9")
    assert load_settings() is first and first.models[0].batch_size == 7
    assert load_settings({"BATCH_SIZES": "9"}).models[0].batch_size == 9
