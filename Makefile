# The single source of commands. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
UV     := $(BIN)/uv
PYTEST_ARGS ?=
# pytest-xdist processes for `make test`. Two share a 2-core machine well (the suite: ~870 s
# serially, 540-680 s with two); the pipeline's memory test, once timing-sensitive under two,
# now samples memory with the allocators' caches returned. 1: serial.
TEST_WORKERS ?= 2
SHELL  := /bin/bash
CHROMIUM := /usr/bin/chromium

.DEFAULT_GOAL := help
.PHONY: help venv demo serve test test-fast lint fmt typecheck lock bench clean chromium bytecode

help: ## List the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found %s)" % sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

venv: $(STAMP) ## Create .venv and install the pinned dependencies

# Every gateway, ingest worker and query worker is a process of its own that imports the
# project and its dependencies (Great Expectations alone is ~1,900 modules). Without .pyc
# files - PYTHONDONTWRITEBYTECODE=1, or uv, which does not compile by default - each start
# compiles them all again: 22 s of CPU for the gateway instead of 7 on this machine.
# The dependencies are compiled at install (--compile-bytecode), the project here; both are
# read even when PYTHONDONTWRITEBYTECODE forbids Python to write them itself.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 gateway ingest policies catalog benchmarks tests >/dev/null

demo: $(STAMP) bytecode ## Start the stack on http://127.0.0.1:8000 with sample data from all five regions
	$(BIN)/datashare demo

serve: $(STAMP) bytecode ## Run the gateway (embedded S3 unless DATASHARE_STORAGE__ENDPOINT_URL is set)
	$(BIN)/datashare serve

# The console's browser tests drive Debian's chromium with playwright; no browser is downloaded.
chromium: ## Install Debian's chromium (and CJK fonts) for the console's browser tests if missing
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null; then sudo="sudo"; \
	  else echo "$(CHROMIUM) is missing: install Debian's chromium package as root" && exit 1; fi; \
	  command -v apt-get >/dev/null || { echo "$(CHROMIUM) is missing and apt-get is not available: install chromium at $(CHROMIUM)"; exit 1; }; \
	  $$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends chromium fonts-noto-cjk; \
	fi

test: $(STAMP) bytecode chromium ## Run the whole test suite (starts its own SeaweedFS and PostgreSQL)
	$(BIN)/pytest -q -p no:cacheprovider $(if $(filter-out 1,$(TEST_WORKERS)),-n $(TEST_WORKERS)) $(PYTEST_ARGS)

test-fast: $(STAMP) bytecode ## Tests on the local store and SQLite only
	ACTIVE_BACKENDS=local ACTIVE_CATALOGS=sqlite $(BIN)/pytest -q -p no:cacheprovider -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, formatting, mypy, and the lock file is current
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(UV) pip compile pyproject.toml --group dev --universal --python-version 3.11 --no-header 2>/dev/null | diff -q - <(grep -v '^#' requirements.lock) >/dev/null || (echo "requirements.lock is stale: run make lock" && exit 1)

fmt: $(STAMP) ## Format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lock: $(STAMP) ## Re-resolve requirements.lock from pyproject.toml
	$(UV) pip compile pyproject.toml --group dev --universal --python-version 3.11 -q -o requirements.lock

bench: $(STAMP) bytecode ## Benchmarks (ratios against raw DuckDB/pyarrow on this machine)
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.ingest --size 1GiB

clean: ## Remove the virtualenv and the demo data
	rm -rf $(VENV) .datashare
