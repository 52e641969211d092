# One command each: `make serve` and `make test` work on a fresh machine (they install first).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: install dev serve test lint bench dist clean

install: $(VENV)/.installed  ## the package alone (editable): all `make serve` needs

dev: $(VENV)/.installed-dev  ## + the test and lint extras, at the versions in constraints.txt

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed constraints.txt
	$(BIN)/python -m pip install --quiet -e '.[test,lint]' -c constraints.txt
	touch $@

serve: install  ## serve the built-in default scenario (pass ARGS="--scenario scenarios/ --port 8000")
	$(BIN)/mockllm serve $(ARGS)

test: lint  ## lint, then the whole test suite
	$(BIN)/python -m pytest $(ARGS)

bench: dev  ## mockllm beside a raw-asyncio ceiling: table on stdout, figures in build/bench/
	$(BIN)/python -m bench $(ARGS)

dist: install  ## the wheel of mockllm-server, in dist/ (pip install dist/mockllm_server-*.whl)
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .

lint: dev
	$(BIN)/ruff check mockllm tests bench
	$(BIN)/ruff format --check mockllm tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache
