"""BENCHMARKS.md's section on audio embeddings, and its target (bench.audio)."""

from __future__ import annotations

__all__ = ["section", "targets"]

TARGET = 1.0  # of stock Infinity's audio path


def targets(res: dict) -> list[tuple[str, float, float, str]]:
    """(what, ratio, target, kind), once a run measured it."""
    if "audio" not in res:
        return []
    what = "CLAP (HTSAT) clips/s vs stock, mixed 1-10 s clips"
    ratio = res["audio"]["ratio"]
    return [(what, 0.0 if ratio is None else ratio, TARGET, "min")]  # failures: missed


def section(res: dict) -> list[str]:
    """The section's lines, or none before a run measured it."""
    if "audio" not in res:
        return []
    row = res["audio"]
    decode = row["decode"]
    lines = [
        "",
        "## Audio embeddings (CLAP, torch)",
        "",
        "A CLAP with laion/clap-htsat-unfused's audio tower (HTSAT-tiny, 27.5 M parameters, random "
        "weights), each server alone with it; requests of 4 data-URI WAV clips (48 kHz mono, "
        "stock Infinity's only rate; 1 to 10 s, none past the 10 s window; 12 in turn) at 4 "
        "connections; both servers up, the points alternated over two rounds.",
        "",
        "| server | clips/s | p50 / p99 ms |",
        "|---|---:|---|",
    ]
    for name in ("ours_torch", "stock"):
        errors = f", {row[name]['errors']} errors" if row[name]["errors"] else ""
        lines.append(
            f"| {name} | {row[name]['clips_per_s']} | "
            f"{row[name]['p50_ms']:.0f} / {row[name]['p99_ms']:.0f}{errors} |"
        )
    lines += [
        "",
        f"Ratio ours/stock: **{_ratio(row['ratio'])}**. Decoding (in process, ours): "
        f"{decode['wav_48k_ms_per_clip']} ms per clip of the bench (base64 to mono float32, "
        f"{decode['share_of_serving'] * 100:.1f}% of serving one clip); a 5 s 44.1 kHz stereo "
        f"MP3 decoded, mixed and resampled to 48 kHz: {decode['mp3_44k1_stereo_5s_ms']} ms.",
    ]
    return lines


def _ratio(ratio: float | None) -> str:
    return "n/a (requests failed)" if ratio is None else f"{ratio:.2f}x"
