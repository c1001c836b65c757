# The one entry point for people and CI. `make demo` and `make test` work on a fresh machine:
# each creates the virtual environment on first use and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# PyTorch's CPU build is installed first, pinned: the project's torch extra is bounded so that
# this version satisfies it, and nothing later pulls a multi-gigabyte CUDA build.
TORCH_PIN ?= torch==2.13.0

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet -e '.[dev,screen,torch]'
	touch $(STAMP)

demo: install
	PATH="$(abspath $(BIN)):$$PATH" bash examples/demo.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# One table of every figure (bench/all.py). `make bench BENCH_FLAGS=--quick` for a smoke run;
# the first full run also builds the 1M-entry ledger, kept for later runs.
bench: install
	$(BIN)/python bench/all.py $(BENCH_FLAGS)

clean:
	rm -rf $(VENV) demo-workdir .mypy_cache .ruff_cache
