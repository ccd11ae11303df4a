# Every target sets itself up: a fresh clone needs only Python 3.11+ (and, for the tests, the
# PostgreSQL and Redis servers that run on every machine of this project).
VENV    ?= .venv
PYTHON  ?= python3
STAMP   := $(VENV)/.installed
BIN     := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast bench lock clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the pinned dependencies

demo: setup  ## the main job on the embedded default (SQLite + local model folder)
	$(BIN)/adsentinel demo

test: setup  ## the whole test suite, slow tests included
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

test-fast: setup  ## the suite without the tests marked slow
	$(BIN)/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

bench: setup  ## benchmarks (ratios against reference runs in the same process)
	$(BIN)/python benchmarks/bench_forest.py
	$(BIN)/python benchmarks/bench_import.py

lock: setup  ## re-pin requirements.lock from the current .venv
	$(BIN)/python -m pip freeze --exclude-editable > requirements.lock

clean:
	rm -rf $(VENV) adsentinel-data .pytest_cache
