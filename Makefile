# One-command entry points: `make serve` and `make test` create .venv when missing,
# install the pinned project into it, then serve or test.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test test-fast lint bench soak gpu-bench runpod clean image-cpu image-gpu image-runpod image-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# openapi-python-client (tests/e2e/test_openapi_client.py generates a client with it, as a
# user does) pins typer below ours: it gets a folder of its own, installed here, not in a test.
GENERATOR := openapi-python-client==0.29.1
GENERATOR_DIR := $(VENV)/openapi-generator

$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	rm -rf $(GENERATOR_DIR)
	$(BIN)/pip install --quiet --target $(GENERATOR_DIR) '$(GENERATOR)'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/python -m handlers.serve

# Side-by-side benchmark, about 25 min: writes BENCHMARKS.md and bench/throughput.png.
# Needs wrk (installed with apt-get when run as root); installs stock Infinity into
# bench/.stock-venv once. Another model: make bench BENCH_ARGS="--model <id or folder>".
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench.perf $(BENCH_ARGS)

# Memory under load, an hour: 30 minutes of mixed-length load on each backend, RSS sampled
# every 30 s, the end against the first 2 minutes (ceiling 1.05x); writes bench/soak.json.
# Shorter: make soak SOAK_ARGS="--minutes 5 --backend torch".
soak: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

# One NVIDIA GPU: install, test, benchmark against stock Infinity on it (under 10 minutes;
# bench/gpu.sh). GPU_ARGS=--cpu runs the same steps here with the GPU parts skipped.
gpu-bench:
	bench/gpu.sh $(GPU_ARGS)

runpod: $(STAMP)
	$(BIN)/python -m runpod_adapter

# Images (docs/images.md): `bentoml build`, then a plain `bentoml containerize` (it works
# from any folder: the bentos use bentofile options only, no dockerfile_template). The
# Docker/BuildKit backend by default; IMAGE_BACKEND=buildah (or podman, ...) and
# IMAGE_OPTS="--opt network=host" for others.
IMAGE_TAG ?= latest
IMAGE_BACKEND ?= docker
IMAGE_OPTS ?=
IMAGE_BUILD ?= docker build
CPU_BENTOFILE ?= deploy/bentofile.cpu.yaml
GPU_BENTOFILE ?= bentofile.yaml
CONTAINERIZE := $(BIN)/bentoml containerize --backend $(IMAGE_BACKEND) $(IMAGE_OPTS)

image-cpu: $(STAMP)
	$(BIN)/bentoml build -f $(CPU_BENTOFILE) .
	$(CONTAINERIZE) -t embedding-service-cpu:$(IMAGE_TAG) embedding-service-cpu:latest

image-gpu: $(STAMP)
	$(BIN)/bentoml build -f $(GPU_BENTOFILE) .
	$(CONTAINERIZE) -t embedding-service:$(IMAGE_TAG) embedding-service:latest

image-runpod:
	$(IMAGE_BUILD) -f runpod_adapter/Dockerfile -t embedding-worker:$(IMAGE_TAG) .

# Builds the three images here with buildah (installed when missing; root), stand-in bases
# made with debootstrap, then smoke-tests each; prints sizes and build times. Minutes.
image-test: $(STAMP)
	$(BIN)/python -m tests.image_check

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# The inner loop: ruff and the tests not marked slow (no builds, exports, engines, servers).
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache
