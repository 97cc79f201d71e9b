# The two commands of the README. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ./data

.PHONY: run test lint clean

$(BIN)/pnsq: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test-deps: pyproject.toml $(BIN)/pnsq
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(BIN)/pnsq
	mkdir -p $(DATA)
	$(BIN)/pnsq nsqd --tcp-address=127.0.0.1:4150 --http-address=127.0.0.1:4151 \
		--broadcast-address=127.0.0.1 --data-path=$(DATA)

lint: $(VENV)/.test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
