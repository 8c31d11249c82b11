# One-command entry points: `make serve` and `make test` create .venv when missing,
# install the pinned project into it, then serve or test.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint bench runpod clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/python -m handlers.serve

# Side-by-side benchmark, about 25 min: writes BENCHMARKS.md and bench/throughput.png.
# Needs wrk (installed with apt-get when run as root); installs stock Infinity into
# bench/.stock-venv once. Another model: make bench BENCH_ARGS="--model <id or folder>".
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench.perf $(BENCH_ARGS)

runpod: $(STAMP)
	$(BIN)/python -m runpod_adapter

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache
