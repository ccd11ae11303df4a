# Every target sets itself up: a fresh clone needs only Python 3.11+ (and, for the tests, the
# PostgreSQL and Redis servers that run on every machine of this project).
VENV    ?= .venv
PYTHON  ?= python3
STAMP   := $(VENV)/.installed
BIN     := $(VENV)/bin
PYTEST_ARGS ?=
CHROMIUM ?= /usr/bin/chromium
APT_GET := DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get

.PHONY: setup browser demo lint test test-fast bench lock clean

# requirements.lock pins what the service needs at runtime; requirements-dev.lock adds the test tools.
$(STAMP): requirements.lock requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the pinned runtime and test dependencies

# The dashboard's browser test drives Debian's Chromium (Playwright never downloads a browser).
$(CHROMIUM):
	@echo "installing Debian's chromium for the dashboard browser test"
	$(APT_GET) install -y -q chromium || ($(APT_GET) update -q && $(APT_GET) install -y -q chromium)

browser: $(CHROMIUM)  ## install Debian's Chromium if it is missing

# ./adsentinel-data, once it exists, is the data folder of every command run in this checkout
demo: setup  ## the main job on the embedded default (SQLite + model folder in ./adsentinel-data)
	mkdir -p -m 0700 adsentinel-data
	$(BIN)/adsentinel demo

# ruff's rules and mypy's settings are in pyproject.toml; ruff only checks (it never reformats)
lint: setup  ## ruff check and mypy (a few seconds; a finding fails the target)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: setup browser lint  ## lint, then the whole test suite, slow tests included
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

test-fast: setup browser lint  ## lint, then the suite without the tests marked slow
	$(BIN)/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

bench: setup  ## benchmarks (ratios against reference runs in the same process)
	$(BIN)/python benchmarks/bench_forest.py
	$(BIN)/python benchmarks/bench_import.py

lock: setup  ## re-pin requirements.lock (runtime) and requirements-dev.lock (tests) from .venv
	$(BIN)/python .ci/pin_requirements.py

clean:
	rm -rf $(VENV) adsentinel-data .pytest_cache .mypy_cache .ruff_cache
