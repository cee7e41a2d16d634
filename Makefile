# The two commands of the README. Each one installs what it needs first (idempotent).
PYTHON ?= python3
PIP = $(PYTHON) -m pip install --quiet

.PHONY: install demo test lint

install:
	$(PIP) torch==2.13.0
	$(PIP) -e '.[test]'

demo: install
	$(PYTHON) -m fga_ros.cli demo --out-dir out

test: install
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy
	$(PYTHON) -m pytest -q test
