"""End to end: audio embeddings through the real service (HTTP) and the RunPod worker, for tiny
CLAP (plain and fused) and PE-Audio models, against each model's own processor and feature
methods on the waveform the test decodes itself (soundfile, soxr); text through the text
tower at its real context length; hostile audio answered with a clear 4xx."""

from __future__ import annotations

import base64
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.audio_clips import (
    clip_bytes,
    data_uri,
    declares_hours_wav,
    lying_mp3,
    oracle_waveform,
    signal,
)
from tests.conftest import EMBED_ID
from tests.families_audio import (
    CLAP_SECONDS,
    CLAP_TEXT_TOKENS,
    build_clap,
    build_pe_audio,
    build_st_clap,
)
from tests.runpod_procs import LocalApi, worker_env
from tests.servers import serving

CLAP_ID, FUSED_ID, PE_ID, ST_ID = "tiny/clap", "tiny/clap-fused", "tiny/pe-audio", "tiny/st-clap"
RATE = 48_000
# (kind, seconds, rate, channels, codec): mixed lengths, rates, channel counts and codecs
CLIPS = [
    ("tone", 0.6, 48_000, 1, "wav"),
    ("noise", 0.4, 16_000, 2, "flac"),
    ("tone", 0.8, 44_100, 2, "ogg"),
    ("noise", 0.5, 22_050, 1, "mp3"),
    ("silence", 0.3, 8_000, 1, "wav"),
]


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_models) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("audio")
    return {
        CLAP_ID: build_clap(root / "clap"),
        FUSED_ID: build_clap(root / "fused", fused=True),
        PE_ID: build_pe_audio(root / "pe"),
        ST_ID: build_st_clap(root / "st"),
        EMBED_ID: tiny_models[EMBED_ID],
    }


@pytest.fixture(scope="module")
def models_env(models) -> dict[str, str]:
    return {**serving(models), "MAX_AUDIO_SECONDS": "30", "MAX_AUDIO_BYTES": "3000000"}


@pytest.fixture(scope="module")
def clips() -> list[bytes]:
    return [
        clip_bytes(signal(k, s, r, c, seed=i), r, codec)
        for i, (k, s, r, c, codec) in enumerate(CLIPS)
    ]


@cache
def loaded(folder: Path) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoProcessor

    return AutoModel.from_pretrained(folder).eval(), AutoProcessor.from_pretrained(folder)


def audio_oracle(folder: Path, data: bytes, seconds: float | None = None) -> np.ndarray:
    """The model's own vector of one clip: its processor on the waveform decoded here, then
    get_audio_features (CLAP) or get_audio_embeds (PE-Audio), normalised."""
    import torch

    model, processor = loaded(folder)
    features = processor.feature_extractor(
        [oracle_waveform(data, RATE, seconds)], sampling_rate=RATE, return_tensors="pt"
    )
    with torch.inference_mode():
        if model.config.model_type == "clap":
            vector = model.get_audio_features(**features).pooler_output[0]
        else:
            vector = model.get_audio_embeds(features["input_values"], features["padding_mask"])[0]
    return torch.nn.functional.normalize(vector, dim=-1).numpy()


def text_oracle(folder: Path, text: str, max_length: int) -> np.ndarray:
    import torch

    model, processor = loaded(folder)
    tokens = processor.tokenizer(
        [text], truncation=True, max_length=max_length, return_tensors="pt"
    )
    with torch.inference_mode():
        if model.config.model_type == "clap":
            vector = model.get_text_features(**tokens).pooler_output[0]
        else:
            vector = model.text_audio_head(model.text_model(**tokens).last_hidden_state[:, 0])[0]
    return torch.nn.functional.normalize(vector, dim=-1).numpy()


def vectors(reply: Any) -> list[np.ndarray]:
    assert reply.status_code == 200, reply.text
    return [np.asarray(item["embedding"]) for item in reply.json()["data"]]


@pytest.mark.parametrize("model", [CLAP_ID, FUSED_ID, PE_ID])
def test_clips_of_each_codec_equal_the_models_own_alone_and_batched(
    models_http, models, clips, model
):
    wanted = [audio_oracle(models[model], data) for data in clips]
    body = {
        "model": model,
        "modality": "audio",
        "input": [data_uri(d, c[4]) for d, c in zip(clips, CLIPS, strict=True)],
    }
    batched = vectors(models_http.post("/v1/embeddings", json=body))
    for got, want in zip(batched, wanted, strict=True):
        assert float(got @ want) >= 0.9999
    alone = vectors(models_http.post("/v1/embeddings", json={**body, "input": body["input"][1:2]}))
    assert float(alone[0] @ batched[1]) >= 0.9999
    pairs = [float(a @ b) for i, a in enumerate(wanted) for b in wanted[i + 1 :]]
    assert max(pairs) < 0.9999, "oracle too flat: two clips' vectors are not told apart"


def test_a_sentence_transformers_pipeline_with_audio_equals_its_encode(models_http, models, clips):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(models[ST_ID]), device="cpu")
    audio = [{"array": oracle_waveform(data, RATE), "sampling_rate": RATE} for data in clips[:3]]
    wanted = [model.encode([item])[0] for item in audio] + [model.encode(["a dog barking"])[0]]
    items = [{"audio": data_uri(d, c[4])} for d, c in zip(clips[:3], CLIPS, strict=False)]
    body = {"model": ST_ID, "input": [*items, {"text": "a dog barking"}]}
    for got, want in zip(
        vectors(models_http.post("/v1/embeddings", json=body)), wanted, strict=True
    ):
        assert float(got @ want) >= 0.9999


def test_raw_base64_and_auto_mixed_with_text(models_http, models, clips):
    text = "a dog barking " * 60  # past 20 tokens, past the text tower's 128
    items = [text, base64.b64encode(clips[0]).decode(), data_uri(clips[2], "ogg")]
    body = {"model": CLAP_ID, "input": items, "modality": "auto"}
    got = vectors(models_http.post("/v1/embeddings", json=body))
    assert float(got[0] @ text_oracle(models[CLAP_ID], text, CLAP_TEXT_TOKENS)) >= 0.9999
    assert float(got[1] @ audio_oracle(models[CLAP_ID], clips[0])) >= 0.9999
    assert float(got[2] @ audio_oracle(models[CLAP_ID], clips[2])) >= 0.9999
    objects = [{"audio": data_uri(clips[1], "flac")}, {"text": "rain"}]
    pe = vectors(models_http.post("/v1/embeddings", json={"model": PE_ID, "input": objects}))
    assert float(pe[0] @ audio_oracle(models[PE_ID], clips[1])) >= 0.9999
    assert float(pe[1] @ text_oracle(models[PE_ID], "rain", 128)) >= 0.9999


def test_a_clip_past_the_window_is_cut_or_refused_as_truncate_says(models_http, models):
    data = clip_bytes(signal("noise", 2.5, 48_000, seed=7), 48_000)
    body = {"model": CLAP_ID, "modality": "audio", "input": [data_uri(data)]}
    (cut,) = vectors(models_http.post("/v1/embeddings", json=body))
    assert float(cut @ audio_oracle(models[CLAP_ID], data, CLAP_SECONDS)) >= 0.9999
    refused = models_http.post("/v1/embeddings", json={**body, "truncate": False})
    assert refused.status_code == 413
    assert refused.json()["error"]["message"].startswith("input[0] lasts 2.50 s")


def test_models_card_names_modalities_and_the_audio_window(models_http):
    cards = {m["id"]: m for m in models_http.get("/v1/models").json()["data"]}
    assert cards[CLAP_ID]["modalities"] == ["text", "audio"]
    assert cards[CLAP_ID]["audio"] == {"sampling_rate": 48_000, "max_seconds": CLAP_SECONDS}
    assert cards[PE_ID]["audio"] == {"sampling_rate": 48_000, "max_seconds": 10.0}
    assert cards[CLAP_ID]["max_input_tokens"] == CLAP_TEXT_TOKENS
    assert cards[EMBED_ID]["modalities"] == ["text"] and "audio" not in cards[EMBED_ID]
    assert cards[ST_ID]["modalities"] == ["text", "audio"]
    assert cards[ST_ID]["audio"] == {"sampling_rate": 48_000, "max_seconds": CLAP_SECONDS}


def hostile() -> list[tuple[str, str, int, str]]:
    flac = clip_bytes(signal("tone", 1, 48_000), 48_000, "flac")
    return [
        ("10 hours declared", data_uri(declares_hours_wav(10)), 413, "declares 36000.0 s"),
        ("lying MP3 header", data_uri(lying_mp3(), "mp3"), 413, "audio declares"),
        ("truncated FLAC", data_uri(flac[: len(flac) // 2], "flac"), 400, "not decodable audio"),
        ("random MP3", data_uri(bytes(range(256)) * 8, "mp3"), 400, "not decodable audio"),
        ("0 samples", data_uri(clip_bytes(signal("tone", 0, 8000), 8000)), 400, "no samples"),
        ("over MAX_AUDIO_BYTES", data_uri(b"RIFF" + b"\0" * 3_100_000), 413, "larger than"),
        ("not audio", "data:image/png;base64,AAAA", 400, "data:audio/<type>;base64"),
    ]


@pytest.mark.parametrize(
    ("name", "item", "status", "fragment"), hostile(), ids=lambda v: str(v)[:20]
)
def test_hostile_audio_is_a_clear_4xx_naming_the_item(models_http, name, item, status, fragment):
    body = {
        "model": CLAP_ID,
        "modality": "audio",
        "input": [data_uri(clip_bytes(signal("tone", 0.2, 8000), 8000)), item],
    }
    reply = models_http.post("/v1/embeddings", json=body)
    assert reply.status_code == status, reply.text
    message = reply.json()["error"]["message"]
    assert message.startswith("input[1]: ") and fragment in message and "Traceback" not in message
    assert vectors(models_http.post("/v1/embeddings", json={**body, "input": body["input"][:1]}))


def test_a_200_mb_body_is_413_and_the_worker_lives_on(models_http):
    body = (
        b'{"model": "tiny/clap", "modality": "audio", "input": ["'
        + b"A" * (200 * 1024 * 1024)
        + b'"]}'
    )
    reply = models_http.post(
        "/v1/embeddings", content=body, headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 413 and "MAX_REQUEST_BYTES" in reply.json()["error"]["message"]
    assert models_http.get("/v1/models").status_code == 200


def test_runpod_native_and_openai_route_jobs(models_env, models, clips):
    job = {"model": PE_ID, "modality": "audio", "input": [data_uri(clips[3], "mp3")]}
    want = audio_oracle(models[PE_ID], clips[3])
    with LocalApi(worker_env(models_env)) as worker:
        native = worker.runsync(job)
        (routed,) = worker.runsync({"openai_route": "/v1/embeddings", "openai_input": job})
        bad = worker.runsync({**job, "input": [data_uri(declares_hours_wav(10))]})
    assert float(np.asarray(native["data"][0]["embedding"]) @ want) >= 0.9999
    assert routed["data"][0]["embedding"] == native["data"][0]["embedding"]
    assert bad["code"] == 413 and bad["message"].startswith("input[0]: audio declares")
