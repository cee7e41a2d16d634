# The two commands of the README. Each one first creates (or updates) the project's virtual
# environment in $(VENV) with tools/make_venv.py: nothing is installed outside it, so a
# stock system Python (PEP 668: Debian 12, Ubuntu 22.04 / 24.04) works. Settings:
#   PYTHON           interpreter that creates the environment (default: python3 on PATH)
#   VENV             environment directory (default: .venv, git-ignored)
#   TORCH_INDEX_URL  package index for torch only, e.g. https://download.pytorch.org/whl/cpu
#                    for the CPU-only build (default: pip's own index: CUDA build on PyPI)
PYTHON ?= python3
VENV ?= .venv
TORCH_INDEX_URL ?=
BIN = $(VENV)/bin

.PHONY: venv demo test

venv:
	@$(PYTHON) tools/make_venv.py $(VENV) --torch-index-url '$(TORCH_INDEX_URL)'

demo: venv
	$(BIN)/fga demo --out-dir out

test: venv
	$(BIN)/python -m ruff check .
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -q test
