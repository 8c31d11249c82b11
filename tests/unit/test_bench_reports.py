"""BENCHMARKS.md's GPU section (a GPU run's figures replace the not-run note between the
markers, once, and the rest of the page stays as it was) and its memory section."""

from __future__ import annotations

import json

from bench import report_gpu, report_soak


def _results(gpu: str | None) -> dict:
    point = {"rps": 0.0, "p50_ms": 1.0, "p99_ms": 2.0}
    return {
        "model": "m",
        "seconds": 300.0,
        "machine": {"cpu": "some CPU", "date": "2026-12-05", "gpu": gpu},
        "dtypes": {
            "float16": {
                "sentences": {
                    "ours_torch": [{**point, "rps": 900.0, "concurrency": 64}],
                    "stock": [{**point, "rps": 600.0, "concurrency": 64}],
                },
                "ingestion": {
                    "16": {
                        "ours_torch": {"4": {**point, "chunks_per_s": 50.0}},
                        "stock": {"4": {**point, "chunks_per_s": 0.0}},
                    }
                },
                "clip": {"skipped": "over the time budget"},
            }
        },
    }


def test_the_section_gives_each_point_on_both_servers_and_their_ratio():
    text = report_gpu.section(_results("NVIDIA H100, 81559 MiB"))
    assert "`bench/gpu.sh` on NVIDIA H100, 81559 MiB," in text
    assert "| one sentence, c=64 (req/s) | 900.0 | 600.0 | 1.50× |" in text
    assert "| ingestion, 16 chunks/request, c=4 (chunks/s) | 50.0 | 0.0 | – |" in text
    assert "Skipped (past the time budget): clip." in text


def test_a_dry_run_says_it_is_not_gpu_figures():
    assert "CPU only (some CPU): a dry run, not GPU figures" in report_gpu.section(_results(None))


def test_insert_replaces_the_block_between_the_markers_once(tmp_path):
    page = tmp_path / "BENCHMARKS.md"
    missing = tmp_path / "gpu_results.json"
    page.write_text("# Benchmarks\n\nbefore\n\n" + report_gpu.block(missing) + "\nafter\n")
    assert "Not measured yet" in page.read_text()
    for _ in range(2):
        report_gpu.insert(report_gpu.section(_results("H100")), page)
    text = page.read_text()
    assert text.count(report_gpu.START) == 1 and text.count("## GPU") == 1
    assert "Not measured yet" not in text and "| 900.0 | 600.0 |" in text
    assert text.startswith("# Benchmarks\n\nbefore\n") and text.rstrip().endswith("after")


def test_insert_appends_the_block_to_a_page_without_markers(tmp_path):
    page = tmp_path / "BENCHMARKS.md"
    page.write_text("# Benchmarks\n")
    report_gpu.insert("## GPU\n\nx\n", page)
    expected = f"# Benchmarks\n\n{report_gpu.START}\n## GPU\n\nx\n{report_gpu.END}\n"
    assert page.read_text() == expected


def test_the_memory_section_gives_each_backends_soak_and_its_verdict(tmp_path):
    path = tmp_path / "soak.json"
    assert report_soak.section(path) == ""  # no soak run yet: no section
    row = {"minutes": 30.0, "requests": 900, "idle_mb": 740.0, "ceiling": 1.05}
    flat = {**row, "settled_mb": 900.0, "end_mb": 910.0, "ratio": 1.011, "met": True}
    grown = {**row, "settled_mb": 900.0, "end_mb": 1000.0, "ratio": 1.111, "met": False}
    flat["samples"] = [[0, 740.0], [120, 900.0], [600, 955.0], [1800, 910.0]]
    grown["samples"] = [[0, 740.0], [120, 900.0], [1800, 1000.0]]
    path.write_text(json.dumps({"torch": flat, "optimum": grown}))
    text = report_soak.section(path)
    assert "| torch | 30 | 900 | 740 | 900 | 910 | 955 | 1.011x (≤ 1.05x) | yes |" in text
    assert "| optimum | 30 | 900 | 740 | 900 | 1000 | 1000 | 1.111x (≤ 1.05x) | **no** |" in text


def test_the_beyond_dense_section_gives_each_kind_against_its_ceiling_and_the_target():
    from bench import report_beyond

    row = {"ceiling_items_per_s": 20.0, "p50_ms": 10.0, "p99_ms": 30.0, "errors": 0}
    res = {
        "beyond": {
            "sparse": {**row, "items_per_s": 19.0, "ratio": 0.95},
            "llm_rerank": {**row, "items_per_s": 14.0, "ratio": 0.7, "errors": 2},
        }
    }
    lines = report_beyond.section(res)
    assert "| sparse (MiniLM-L6 SPLADE), /v1/embeddings | 19.0 | 20.0 | 0.95x | 10 / 30 |" in lines
    assert lines[-1].endswith("| 0.70x | 10 / 30, 2 errors |")
    met = {
        what.split(",")[0]: ratio >= target for what, ratio, target, _ in report_beyond.targets(res)
    }
    assert met == {"sparse (MiniLM-L6 SPLADE)": True, "LLM reranker (Qwen3-style": False}
    assert report_beyond.section({}) == [] and report_beyond.targets({}) == []


def test_the_audio_section_gives_both_servers_the_ratio_and_the_decode_cost():
    from bench import report_audio

    row = {"clips_per_s": 6.2, "p50_ms": 2500.0, "p99_ms": 2900.0, "errors": 0}
    res = {
        "audio": {
            "ours_torch": row,
            "stock": {**row, "clips_per_s": 6.0, "errors": 3},
            "ratio": 1.03,
            "decode": {
                "wav_48k_ms_per_clip": 2.8,
                "mp3_44k1_stereo_5s_ms": 8.3,
                "share_of_serving": 0.017,
            },
        }
    }
    text = "\n".join(report_audio.section(res))
    assert (
        "| ours_torch | 6.2 | 2500 / 2900 |" in text
        and "| stock | 6.0 | 2500 / 2900, 3 errors |" in text
    )
    assert "**1.03x**" in text and "2.8 ms per clip" in text and "1.7% of serving" in text
    ((what, ratio, target, kind),) = report_audio.targets(res)
    assert "CLAP" in what and (ratio, target, kind) == (1.03, 1.0, "min")
    assert report_audio.section({}) == [] and report_audio.targets({}) == []
