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

bench: install
	$(BIN)/python bench/hashing.py
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/verify.py
	$(BIN)/python bench/guard.py

clean:
	rm -rf $(VENV) demo-workdir .mypy_cache .ruff_cache
