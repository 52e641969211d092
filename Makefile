# One command each: `make serve` and `make test` work on a fresh machine (they install first).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: install serve test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $@

serve: install  ## serve the built-in default scenario (pass ARGS="--scenario scenarios/ --port 8000")
	$(BIN)/mockllm serve $(ARGS)

test: lint  ## lint, then the whole test suite
	$(BIN)/python -m pytest $(ARGS)

bench: install  ## mockllm beside a raw-asyncio ceiling: table on stdout, bench/results/{bench.json,gaps.png}
	$(BIN)/python -m bench $(ARGS)

lint: install
	$(BIN)/ruff check mockllm tests bench
	$(BIN)/ruff format --check mockllm tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache
