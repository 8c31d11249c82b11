"""Bounded audio decoding: the header checked first (format, channels, sampling rate, the
duration it declares), then a block-wise read bounded by the duration limit (or a model's
window), mixed to mono float32 as read."""

from __future__ import annotations

import contextlib
import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from handlers.errors import ErrorKind
from handlers.media.decode import ItemError, out_of_memory

__all__ = ["AudioLimits", "Clip", "Probe", "decode_audio", "probe_audio", "resampled"]


# libsndfile's containers accepted (it parses more: AIFF, CAF, AU, ...; they are refused)
FORMATS = frozenset({"WAV", "WAVEX", "RF64", "FLAC", "OGG", "MP3"})
ACCEPTED_NAMES = "WAV, FLAC, OGG (Vorbis or Opus) or MP3"
MIN_RATE = 4000  # Hz: below telephone audio, nothing a model reads
MIN_SECONDS = 0.01  # shorter clips give the processors nothing to frame
BLOCK = 65_536  # frames read at a time (mixed to mono as read)
_PCM_TAGS = (1, 3, 0xFFFE)  # WAVE_FORMAT_PCM, _IEEE_FLOAT, _EXTENSIBLE
_WAV_CHUNKS = 64  # chunks read before the data chunk, at most


@dataclass(frozen=True)
class Clip:
    """A decoded clip: mono float32 samples at their own sampling rate, and how long the
    whole clip is (its header's duration, or what was read: the samples may stop at the
    window a read was bounded by)."""

    samples: NDArray[np.float32]
    rate: int
    seconds: float


@dataclass(frozen=True)
class AudioLimits:
    """MAX_AUDIO_SECONDS, MAX_AUDIO_CHANNELS, MAX_AUDIO_SAMPLE_RATE."""

    seconds: float
    channels: int
    rate: int


@dataclass(frozen=True)
class Probe:
    """What a clip's header says: its rate, channels and declared frames (`wav`: those a
    WAV's data chunk declares, None for other formats)."""

    rate: int
    channels: int
    frames: int
    wav: int | None = None

    @property
    def seconds(self) -> float:
        return self.frames / self.rate


def _wav_declared_frames(data: bytes) -> int | None:
    """The frames a RIFF/WAVE header declares in its data chunk (libsndfile reports only
    those present), or None when it is not a PCM or float WAV or declares no size."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    offset, block = 12, 0
    for _ in range(_WAV_CHUNKS):
        if offset + 8 > len(data):
            return None
        chunk, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        if chunk == b"fmt " and offset + 24 <= len(data):
            tag, channels = struct.unpack_from("<HH", data, offset + 8)
            bits = struct.unpack_from("<H", data, offset + 22)[0]
            if tag not in _PCM_TAGS or not channels or bits % 8:
                return None
            block = channels * bits // 8  # not the header's block align, which may lie
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


def _check(sound: Any, data: bytes, limits: AudioLimits) -> Probe:
    """The header's format, channels, rate and declared duration, checked."""
    if sound.format not in FORMATS:
        raise ItemError(
            f"audio format {sound.format} is not accepted; send {ACCEPTED_NAMES}",
            code="unsupported_audio_format",
        )
    rate, channels = int(sound.samplerate), int(sound.channels)
    if channels > limits.channels:
        raise ItemError(
            f"audio has {channels} channels; at most {limits.channels} are accepted "
            "(MAX_AUDIO_CHANNELS)",
            code="invalid_audio",
        )
    if not MIN_RATE <= rate <= limits.rate:
        raise ItemError(
            f"audio sampling rate {rate} Hz is outside {MIN_RATE}-{limits.rate} Hz "
            "(MAX_AUDIO_SAMPLE_RATE)",
            code="invalid_audio",
        )
    wav = _wav_declared_frames(data)
    probe = Probe(rate, channels, max(int(sound.frames), wav or 0), wav)
    if probe.seconds > limits.seconds:
        raise _too_long(probe.seconds, limits, "declares")
    return probe


@contextlib.contextmanager
def _opened(data: bytes) -> Iterator[Any]:
    """libsndfile over `data`, its failures as ItemErrors: bad data 400, out of memory a
    logged 503."""
    import soundfile

    try:
        with soundfile.SoundFile(io.BytesIO(data)) as sound:
            yield sound
    except ItemError:
        raise
    except MemoryError:
        raise out_of_memory("audio") from None
    except Exception as exc:  # libsndfile's errors: format not recognised, lost sync, ...
        why = " ".join(str(exc).split(":")[-1].split()) or type(exc).__name__
        raise ItemError(
            f"not decodable audio ({why}); send {ACCEPTED_NAMES}", code="invalid_audio"
        ) from None


def probe_audio(data: bytes, limits: AudioLimits) -> Probe:
    """Read only the header of `data` and check it (blocking).

    Raises:
        ItemError: as decode_audio, for what the header shows.
    """
    with _opened(data) as sound:
        return _check(sound, data, limits)


def decode_audio(data: bytes, limits: AudioLimits, seconds: float | None = None) -> Clip:
    """Decode `data` (blocking): the header checked before anything is decoded, then at
    most `seconds` (a model's window; else the limit's) read block by block, each block's
    channels averaged to mono (float32, as transformers' own loader reads audio).

    Raises:
        ItemError: 400 for data that is not audio of an accepted format, is empty, too
            short, corrupt, truncated (a WAV holding fewer frames than it declares) or holds
            non-finite samples, or has too many channels or a rate out of range; 413 for a
            clip declaring more than the limit; 503 (logged) when memory runs out.
    """
    with _opened(data) as sound:
        probe = _check(sound, data, limits)
        most = int(min(limits.seconds, seconds or limits.seconds) * probe.rate)
        parts: list[NDArray[np.float32]] = []
        read = 0
        # libsndfile 1.2's MP3 decoder loses its place across partial reads: an MP3 (two
        # channels and 48 kHz at most) is read at once, other formats block by block
        size = most if sound.format == "MP3" else BLOCK
        while read < most:
            block = sound.read(min(size, most - read), dtype="float32", always_2d=True)
            if not len(block):
                break
            parts.append(
                block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
            )
            read += len(block)
        more = read == most and bool(len(sound.read(1, dtype="float32")))
    if probe.wav is not None and read < min(probe.wav, most):
        raise ItemError(
            f"audio is truncated: its header declares {probe.wav} frames, it holds {read}",
            code="invalid_audio",
        )
    if read < MIN_SECONDS * probe.rate:
        what = "holds no samples" if not read else f"lasts {read / probe.rate:.4f} s"
        raise ItemError(f"audio {what}; at least {MIN_SECONDS:g} s is needed", code="invalid_audio")
    mono = np.concatenate(parts)
    if not np.isfinite(mono).all():
        raise ItemError("audio holds samples that are not finite numbers", code="invalid_audio")
    frames = max(probe.frames, read + int(more))
    return Clip(np.ascontiguousarray(mono, dtype=np.float32), probe.rate, frames / probe.rate)


def resampled(clip: Clip, rate: int) -> NDArray[Any]:
    """The clip's samples at `rate`, as transformers' audio loader resamples (soxr, high
    quality; length ceil(n x rate / own rate))."""
    if clip.rate == rate:
        return clip.samples
    import soxr

    wanted = -(-len(clip.samples) * rate // clip.rate)
    out = soxr.resample(clip.samples, clip.rate, rate, quality="soxr_hq")
    return np.pad(out, (0, max(0, wanted - len(out))))[:wanted].astype(np.float32)
