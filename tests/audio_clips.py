"""Audio clips made in the test: tones, noise and silence at several rates and channel counts,
encoded by libsndfile in each accepted codec; hostile files; and the independent decoding
the oracles read them with."""

from __future__ import annotations

import base64
import io
import math
import struct

import numpy as np

__all__ = [
    "CODECS",
    "clip_bytes",
    "data_uri",
    "declares_hours_wav",
    "lying_mp3",
    "oracle_waveform",
    "signal",
]

# codec -> (soundfile format, subtype, MIME type)
CODECS = {
    "wav": ("WAV", "PCM_16", "audio/wav"),
    "flac": ("FLAC", "PCM_16", "audio/flac"),
    "ogg": ("OGG", "VORBIS", "audio/ogg"),
    "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg"),
}


def signal(kind: str, seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A tone (440 Hz, a different pitch per channel), noise or silence; (frames, channels)."""
    frames = int(seconds * rate)
    t = np.arange(frames) / rate
    if kind == "tone":
        columns = [0.5 * np.sin(2 * math.pi * 440 * (1 + c / 2) * t) for c in range(channels)]
        return np.stack(columns, axis=1).astype(np.float32)
    if kind == "noise":
        rng = np.random.default_rng(seed)
        return (0.3 * rng.standard_normal((frames, channels))).astype(np.float32)
    return np.zeros((frames, channels), dtype=np.float32)


def clip_bytes(samples: np.ndarray, rate: int, codec: str = "wav") -> bytes:
    """`samples` (frames, channels) encoded as `codec` by libsndfile."""
    import soundfile

    fmt, subtype, _ = CODECS[codec]
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format=fmt, subtype=subtype)
    return out.getvalue()


def data_uri(data: bytes, codec: str = "wav") -> str:
    return f"data:{CODECS[codec][2]};base64,{base64.b64encode(data).decode()}"


def oracle_waveform(data: bytes, rate: int, seconds: float | None = None) -> np.ndarray:
    """The mono float32 waveform at `rate` as transformers' own audio loader reads the file
    (`transformers.audio_utils.load_audio`, its soundfile backend: channels averaged, soxr
    high-quality resampling), cut to `seconds` when given."""
    from transformers.audio_utils import load_audio

    wave = load_audio(base64.b64encode(data).decode(), sampling_rate=rate, backend="soundfile")
    if seconds is not None:
        wave = wave[: int(seconds * rate)]
    return np.asarray(wave, dtype=np.float32)


def declares_hours_wav(hours: float = 10, rate: int = 16_000) -> bytes:
    """A WAV whose header declares `hours` of 16-bit mono audio, holding 100 frames."""
    data_size = int(hours * 3600 * rate * 2)
    header = b"RIFF" + struct.pack("<I", 36 + data_size) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    return header + b"data" + struct.pack("<I", data_size) + b"\x00\x01" * 100


def lying_mp3(seconds: float = 1.0, rate: int = 44_100) -> bytes:
    """An MP3 whose Xing header claims 2^31 frames (~15,000 hours): read() unbounded would
    allocate terabytes."""
    data = bytearray(clip_bytes(signal("tone", seconds, rate), rate, "mp3"))
    at = data.find(b"Xing")
    if at < 0:
        at = data.find(b"Info")
    assert at >= 0, "libsndfile wrote no Xing/Info header"
    struct.pack_into(">I", data, at + 8, 0x7FFFFFFF)  # the frame count after the flags
    return bytes(data)
