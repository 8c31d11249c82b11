#!/usr/bin/env bash
# The GPU run in one command, under 10 minutes, on a machine with one NVIDIA GPU and nothing
# but this repository: install the project (PyPI's torch wheel for Linux carries CUDA), run the
# tests that need no GPU-specific change (ruff, mypy, the unit and contract tests), then
# benchmark our service (torch) against stock Infinity on the same GPU, fp16 and fp32
# (bench/gpu.py), writing bench/gpu_results.json and BENCHMARKS.md's GPU section.
#
#   bench/gpu.sh          # the GPU run
#   bench/gpu.sh --cpu    # the same steps with the GPU parts skipped: a dry run on any machine
set -euo pipefail
cd "$(dirname "$0")/.."
began=$(date +%s)
mode=gpu
args=()
if [[ "${1:-}" == "--cpu" ]]; then mode=cpu args=(--cpu); fi
step() { echo "== $(($(date +%s) - began)) s: $*"; }

if [[ $mode == gpu ]]; then
  step "the GPU"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi

step "install (make's .venv, as make test does)"
make --no-print-directory .venv/.installed
if [[ $mode == gpu ]]; then
  .venv/bin/python -c 'import torch; assert torch.cuda.is_available(), "torch sees no GPU"; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))'
fi

step "tests that need no GPU (make test-fast: ruff, mypy, unit and contract tests)"
make --no-print-directory test-fast

step "benchmark ($mode)"
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python -m bench.gpu "${args[@]}"

took=$(($(date +%s) - began))
step "done in $took s (budget 600 s)"
if ((took > 600)); then echo "over the 10-minute budget" >&2; exit 1; fi
