"""Bounded audio decoding: the header checked first (format, channels, sampling rate, the
duration it declares), then a read bounded by the duration limit, mixed to mono float32."""

from __future__ import annotations

import base64
import binascii
import io
import re
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from handlers.errors import ErrorKind
from handlers.media.decode import ItemError

__all__ = [
    "AUDIO_DATA_URI",
    "AudioLimits",
    "Clip",
    "decode_audio",
    "looks_like_audio",
    "resampled",
]

AUDIO_DATA_URI = re.compile(r"^data:audio/[\w.+-]+(?:;[\w-]+=[^;,]*)*;base64,", re.IGNORECASE)
# what libsndfile decodes here: WAV, FLAC, OGG (Vorbis, Opus), MP3 (and AIFF, CAF, ...)
ACCEPTED_NAMES = "WAV, FLAC, OGG (Vorbis or Opus) or MP3"
_MAGIC = (b"RIFF", b"fLaC", b"OggS", b"ID3", b"FORM", b"caff")
_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3")


@dataclass(frozen=True)
class Clip:
    """A decoded clip: mono float32 samples at their own sampling rate."""

    samples: NDArray[np.float32]
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


@dataclass(frozen=True)
class AudioLimits:
    """MAX_AUDIO_SECONDS, MAX_AUDIO_CHANNELS, MAX_AUDIO_SAMPLE_RATE."""

    seconds: float
    channels: int
    rate: int


def looks_like_audio(item: str) -> bool:
    """`auto` modality: `data:audio/...;base64,` URIs, http(s) URLs whose path ends in an
    audio extension (.wav, .flac, .ogg, .opus, .mp3), and bare base64 whose bytes start as
    an audio file does (RIFF, fLaC, OggS, ID3, an MPEG frame)."""
    if AUDIO_DATA_URI.match(item):
        return True
    lowered = item[:8].lower()
    if lowered.startswith(("http://", "https://")):
        path = item.split("?", 1)[0].split("#", 1)[0].lower()
        return path.endswith(_EXTENSIONS)
    if len(item) < 16 or " " in item[:16]:
        return False
    try:
        head = base64.b64decode(item[:16], validate=True)
    except (binascii.Error, ValueError):
        return False
    return head.startswith(_MAGIC) or (head[:1] == b"\xff" and head[1] & 0xE0 == 0xE0)


def _wav_declared_frames(data: bytes) -> int | None:
    """The frames a RIFF/WAVE header declares in its data chunk (libsndfile reports only
    those present), or None when it is not a WAV or declares no size."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    offset, block = 12, 0
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        if chunk == b"fmt " and offset + 22 <= len(data):
            block = struct.unpack_from("<H", data, offset + 20)[0]
        elif chunk == b"data":
            return None if size in (0, 0xFFFFFFFF) or not block else size // block
        offset += 8 + size + (size & 1)
    return None


def _too_long(seconds: float, limits: AudioLimits, how: str) -> ItemError:
    return ItemError(
        f"audio {how} {seconds:.1f} s, over the {limits.seconds:g} s allowed (MAX_AUDIO_SECONDS)",
        ErrorKind.TOO_LARGE,
        "audio_too_long",
    )


def decode_audio(data: bytes, limits: AudioLimits) -> Clip:
    """Decode `data` (blocking): the header's channels, rate and declared duration checked
    before anything is decoded, then at most the allowed duration read, channels averaged
    to mono (float32, as transformers' own loader reads audio).

    Raises:
        ItemError: 400 for data that is not audio of an accepted format, is empty, corrupt,
            truncated (a WAV holding fewer frames than it declares) or holds non-finite
            samples, or has too many channels or too high a rate; 413 for a clip longer than
            the limit (declared or decoded).
    """
    import soundfile

    try:
        with soundfile.SoundFile(io.BytesIO(data)) as sound:
            rate, channels = int(sound.samplerate), int(sound.channels)
            if channels > limits.channels:
                raise ItemError(
                    f"audio has {channels} channels; at most {limits.channels} are accepted "
                    "(MAX_AUDIO_CHANNELS)",
                    code="invalid_audio",
                )
            if not 0 < rate <= limits.rate:
                raise ItemError(
                    f"audio sampling rate {rate} Hz is outside 1-{limits.rate} Hz "
                    "(MAX_AUDIO_SAMPLE_RATE)",
                    code="invalid_audio",
                )
            header = _wav_declared_frames(data)
            declared = max(int(sound.frames), header or 0)
            if declared > limits.seconds * rate:
                raise _too_long(declared / rate, limits, "declares")
            most = int(limits.seconds * rate)
            frames = sound.read(most + 1, dtype="float32", always_2d=True)
    except ItemError:
        raise
    except MemoryError:
        raise ItemError(
            "not enough memory to decode this audio now; retry shortly",
            ErrorKind.NOT_READY,
            "out_of_memory",
            retry_after=1,
        ) from None
    except Exception as exc:  # libsndfile's errors: format not recognised, lost sync, ...
        why = " ".join(str(exc).split(":")[-1].split()) or type(exc).__name__
        raise ItemError(
            f"not decodable audio ({why}); send {ACCEPTED_NAMES}", code="invalid_audio"
        ) from None
    if len(frames) > most:
        raise _too_long(len(frames) / rate, limits, "lasts more than")
    if not len(frames):
        raise ItemError("audio holds no samples", code="invalid_audio")
    if header is not None and len(frames) < header:
        raise ItemError(
            f"audio is truncated: its header declares {header} frames, it holds {len(frames)}",
            code="invalid_audio",
        )
    mono = frames.mean(axis=1, dtype=np.float32) if frames.shape[1] > 1 else frames[:, 0]
    if not np.isfinite(mono).all():
        raise ItemError("audio holds samples that are not finite numbers", code="invalid_audio")
    return Clip(np.ascontiguousarray(mono, dtype=np.float32), rate)


def resampled(clip: Clip, rate: int) -> NDArray[Any]:
    """The clip's samples at `rate`, as transformers' audio loader resamples (soxr, high
    quality; length ceil(n x rate / own rate))."""
    if clip.rate == rate:
        return clip.samples
    import soxr

    wanted = -(-len(clip.samples) * rate // clip.rate)
    out = soxr.resample(clip.samples, clip.rate, rate, quality="soxr_hq")
    return np.pad(out, (0, max(0, wanted - len(out))))[:wanted].astype(np.float32)
