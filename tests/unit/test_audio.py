"""Audio inputs: bounded decoding of each codec and hostile file (against soundfile's own
reading), the fetcher's audio forms and address policy, and the embeddings core's modality,
capability and window rules over the fake backend."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from handlers.core.dispatch import Core
from handlers.errors import ErrorKind, ServiceError
from handlers.media import addresses
from handlers.media.audio import AudioLimits, Clip, decode_audio, resampled
from handlers.media.decode import ItemError
from handlers.media.fetcher import MediaFetcher
from handlers.media.kinds import looks_like_audio
from handlers.model_info import AudioWindow, ModelInfo
from tests.audio_clips import (
    CODECS,
    clip_bytes,
    data_uri,
    declares_hours_wav,
    lying_mp3,
    oracle_waveform,
    signal,
)
from tests.fake_media import FakeClip, FakeMedia
from tests.fakes import FakeBackend

LIMITS = AudioLimits(seconds=60, channels=8, rate=192_000)


def aiff_bytes() -> bytes:
    import io

    import soundfile

    out = io.BytesIO()
    soundfile.write(out, signal("tone", 0.1, 8000), 8000, format="AIFF")
    return out.getvalue()


@pytest.mark.parametrize("codec", list(CODECS))
@pytest.mark.parametrize(
    ("kind", "rate", "channels"),
    [("tone", 48_000, 1), ("noise", 16_000, 2), ("tone", 44_100, 2)],  # 1.5 s: 1 or 2 blocks
)
def test_each_codec_decodes_to_the_mono_waveform_soundfile_reads(codec, kind, rate, channels):
    data = clip_bytes(signal(kind, 1.5, rate, channels), rate, codec)
    clip = decode_audio(data, LIMITS)
    want = oracle_waveform(data, rate)
    assert clip.rate == rate and clip.samples.dtype == np.float32
    assert clip.samples.shape == want.shape and np.abs(clip.samples - want).max() < 1e-6
    assert 1.4 < clip.seconds < 1.7  # MP3 and Vorbis pad a little


def test_a_read_bounded_by_a_window_keeps_the_whole_clips_length():
    data = clip_bytes(signal("noise", 3, 16_000, 2), 16_000, "flac")
    clip = decode_audio(data, LIMITS, seconds=1.0)
    assert len(clip.samples) == 16_000 and clip.seconds == 3.0
    assert np.abs(clip.samples - oracle_waveform(data, 16_000, 1.0)).max() < 1e-6


def test_silence_decodes_and_resampling_is_transformers_own():
    data = clip_bytes(signal("tone", 1.0, 22_050), 22_050)
    clip = decode_audio(data, LIMITS)
    at_48k = resampled(clip, 48_000)
    assert len(at_48k) == 48_000
    assert np.abs(at_48k - oracle_waveform(data, 48_000)).max() < 1e-6
    assert resampled(clip, 22_050) is clip.samples
    quiet = decode_audio(clip_bytes(signal("silence", 0.5, 8000), 8000), LIMITS)
    assert not quiet.samples.any()


@pytest.mark.parametrize(
    ("data", "kind", "fragment"),
    [
        (declares_hours_wav(10), ErrorKind.TOO_LARGE, "audio declares 36000.0 s, over the 60 s"),
        (lying_mp3(), ErrorKind.TOO_LARGE, "audio declares"),
        (clip_bytes(signal("tone", 61, 8000), 8000), ErrorKind.TOO_LARGE, "declares 61.0 s"),
        (
            clip_bytes(signal("tone", 1, 48_000), 48_000, "flac")[:60],
            ErrorKind.INVALID,
            "decodable",
        ),
        (b"ID3" + bytes(range(256)) * 4, ErrorKind.INVALID, "not decodable audio"),
        (b"", ErrorKind.INVALID, "not decodable audio"),
        (clip_bytes(signal("tone", 0, 8000), 8000), ErrorKind.INVALID, "holds no samples"),
        (clip_bytes(signal("tone", 0.005, 8000), 8000), ErrorKind.INVALID, "at least 0.01 s"),
        (clip_bytes(signal("tone", 0.1, 8000, 9), 8000), ErrorKind.INVALID, "9 channels"),
        (clip_bytes(signal("tone", 0.1, 8000), 8000)[:100], ErrorKind.INVALID, "truncated"),
        (clip_bytes(signal("tone", 0.1, 2000), 2000), ErrorKind.INVALID, "outside 4000-"),
        (aiff_bytes(), ErrorKind.INVALID, "audio format AIFF is not accepted"),
    ],
)
def test_hostile_audio_is_a_clear_item_error(data, kind, fragment):
    with pytest.raises(ItemError) as caught:
        decode_audio(data, LIMITS)
    assert caught.value.kind is kind and fragment in str(caught.value)


def test_a_rate_past_the_limit_and_non_finite_samples_are_refused():
    with pytest.raises(ItemError, match="outside 4000-48000 Hz"):
        decode_audio(clip_bytes(signal("tone", 0.1, 96_000), 96_000), AudioLimits(60, 8, 48_000))
    samples = signal("tone", 0.1, 8000)
    samples[3] = np.nan
    import io

    import soundfile

    out = io.BytesIO()
    soundfile.write(out, samples, 8000, format="WAV", subtype="FLOAT")
    with pytest.raises(ItemError, match="not finite"):
        decode_audio(out.getvalue(), LIMITS)


def test_auto_recognises_audio_by_mime_type_extension_and_magic_bytes():
    wav = clip_bytes(signal("tone", 0.1, 8000), 8000)
    mp3 = clip_bytes(signal("tone", 0.1, 8000), 8000, "mp3")
    assert looks_like_audio(data_uri(wav))
    assert looks_like_audio(base64.b64encode(wav).decode())
    assert looks_like_audio(base64.b64encode(mp3).decode())
    assert looks_like_audio("https://example.com/a/b.mp3?sig=1")
    assert not looks_like_audio("https://example.com/cat.png")
    assert not looks_like_audio("a sentence about a cat")
    assert not looks_like_audio("data:image/png;base64,AAAA")
    # text that merely starts as base64 of a frame sync, short base64, a WebP's RIFF
    assert not looks_like_audio("////////////////////" + " then words of a sentence" * 4)
    assert not looks_like_audio(base64.b64encode(wav[:30]).decode())
    webp = b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(64)
    assert not looks_like_audio(base64.b64encode(webp).decode())
    assert not looks_like_audio("/" * 200)  # base64 of 0xFF bytes: no valid MPEG header


@pytest.fixture
async def fetcher(make_settings):
    fetcher = MediaFetcher(
        make_settings(
            http_client_allow_private_networks="true",
            http_client_timeout="1",
            max_audio_bytes="100000",
            max_audio_seconds="5",
        )
    )
    await fetcher.start()
    yield fetcher
    await fetcher.stop()


async def test_every_form_decodes_to_the_same_clip(fetcher, image_host):
    data = clip_bytes(signal("tone", 0.5, 16_000, 2), 16_000, "flac")
    image_host.routes["/tone.flac"] = (200, "audio/flac", data)
    forms = [data_uri(data, "flac"), base64.b64encode(data).decode(), f"{image_host.url}/tone.flac"]
    clips = await fetcher.load_audio(list(enumerate(forms)))
    for clip in clips:
        assert clip.rate == 16_000 and np.array_equal(clip.samples, clips[0].samples)


async def test_download_and_inline_failures_name_the_item(fetcher, image_host):
    image_host.routes["/big.wav"] = (200, "audio/wav", b"RIFF" + b"\0" * 200_000)
    cases = {
        f"{image_host.url}/page.html": "not audio: ",
        f"{image_host.url}/big.wav": "audio is larger than 100000 bytes",
        f"{image_host.url}/missing.wav": "audio download failed: HTTP 404",
        "data:image/png;base64,AAAA": "data URI must look like data:audio/<type>;base64,<data>",
        base64.b64encode(
            declares_hours_wav(1)
        ).decode(): "over the 5 s allowed (MAX_AUDIO_SECONDS)",
        "not base64 at all!": "invalid base64 audio data",
    }
    for item, fragment in cases.items():
        with pytest.raises(ServiceError) as caught:
            await fetcher.load_audio([(3, item)])
        assert caught.value.message.startswith("input[3]: ") and fragment in caught.value.message


async def test_the_requests_audio_budget_names_the_item_that_exceeds_it(make_settings):
    fetcher = MediaFetcher(make_settings(max_request_audio_seconds="4"))
    clip = data_uri(clip_bytes(signal("tone", 1.5, 8000), 8000))
    assert len(await fetcher.load_audio([(0, clip), (1, clip)])) == 2
    with pytest.raises(ServiceError) as caught:
        await fetcher.load_audio([(0, clip), (1, clip), (2, clip)])
    assert caught.value.message.startswith("input[2]: the request's audio reaches 4.5 s")
    short = await fetcher.load_audio([(i, clip) for i in range(4)], seconds=1.0)  # windows
    assert [c.seconds for c in short] == [1.5] * 4 and len(short[0].samples) == 8000


async def test_a_redirect_to_a_private_address_is_refused(make_settings, image_host, monkeypatch):
    monkeypatch.setattr(addresses, "is_blocked", lambda ip: ip != "127.0.0.1")
    image_host.routes["/tone.wav"] = (200, "audio/wav", clip_bytes(signal("tone", 0.1, 8000), 8000))
    strict = MediaFetcher(make_settings())
    await strict.start()
    try:
        target = f"http://127.0.0.2:{image_host.port}/tone.wav"
        with pytest.raises(ServiceError) as caught:
            await strict.load_audio([(0, f"{image_host.url}/redirect?to={target}")])
    finally:
        await strict.stop()
    assert "audio download refused" in caught.value.message and "127.0.0.2" in caught.value.message


# ------------------------------------------------------------------ the core, over the fakes
CLAP = ModelInfo(
    "clap",
    frozenset({"embed", "audio_embed"}),
    "fake",
    8,
    1,
    max_input_tokens=16,
    fingerprint="a1b2c3d4e5f60718",
    audio=AudioWindow(48_000, 10.0),
)


@pytest.fixture
def core(make_settings) -> tuple[Core, FakeBackend]:
    backend = FakeBackend()
    backend._models["clap"] = CLAP  # noqa: SLF001 (our own fake)
    return Core(make_settings(), backend, FakeMedia()), backend


async def test_audio_items_reach_the_model_as_clips_in_input_order(core):
    core, backend = core
    body = {"model": "clap", "input": ["a dog barking", "data:audio/wav;base64,UklGRg=="]}
    reply = await core.dispatch("/v1/embeddings", {**body, "modality": "auto"})
    assert len(reply["data"]) == 2
    assert backend.calls[-1] == (
        "embed",
        ["a dog barking", FakeClip("data:audio/wav;base64,UklGRg==")],
    )
    objects = {"model": "clap", "input": [{"audio": "https://x.y/z"}, {"text": "a cat"}]}
    await core.dispatch("/v1/embeddings", objects)
    assert backend.calls[-1] == ("embed", [FakeClip("https://x.y/z"), "a cat"])


async def test_audio_errors_are_index_aware(core):
    core, _ = core
    cases = [
        ({"model": "embedder", "modality": "audio", "input": ["x"]}, "the 'audio' capability"),
        ({"model": "clap", "modality": "audio", "input": ["ok", "bad"]}, "input[1]: bad audio"),
        (
            {"model": "clap", "modality": "audio", "input": ["ok", "long"], "truncate": False},
            "input[1] lasts 3600.00 s; the model reads at most 10 s",
        ),
    ]
    for body, fragment in cases:
        with pytest.raises(ServiceError) as caught:
            await core.dispatch("/v1/embeddings", body)
        assert fragment in caught.value.message, caught.value.message
    long = {"model": "clap", "modality": "audio", "input": ["long"]}
    assert len((await core.dispatch("/v1/embeddings", long))["data"]) == 1  # truncate: cut


async def test_the_card_names_modalities_and_the_audio_window(core):
    core, _ = core
    cards = {m["id"]: m for m in (await core.dispatch("/v1/models"))["data"]}
    assert cards["clap"]["modalities"] == ["text", "audio"]
    assert cards["clap"]["audio"] == {"sampling_rate": 48_000, "max_seconds": 10.0}
    assert cards["clip"]["modalities"] == ["text", "image"] and "audio" not in cards["clip"]
    assert Clip(np.zeros(8000, np.float32), 16_000, 0.5).samples.size == 8000
