# The README's two commands: `make demo` and `make test`. Both include the set-up and are idempotent.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv is bootstrapped into a private venv when the machine has none (pyenv shims may hide it).
UV_BOOTSTRAP := $(HOME)/.cache/testbed/uv-bootstrap
UV ?= $(shell command -v uv >/dev/null 2>&1 && uv --version >/dev/null 2>&1 && echo uv || echo $(UV_BOOTSTRAP)/bin/uv)
RUN := $(UV) run --frozen
PYTEST_ARGS ?=
# The suite runs on this many native stacks at once (tests/conftest.py splits the live tests between them).
TEST_STACKS ?= 2

.PHONY: help setup demo test lint unit down

help:
	@echo "make demo   set up, bring the native stack up, run the main job"
	@echo "make test   set up, run the whole suite (unit, static checks, native integration)"
	@echo "make lint   ruff and mypy"
	@echo "make down   stop the native stack"

$(UV_BOOTSTRAP)/bin/uv:
	@command -v python3 >/dev/null || { echo "python3 >= 3.12 is required: install it (pyenv install 3.12) and retry" >&2; exit 1; }
	python3 -m venv $(UV_BOOTSTRAP)
	$(UV_BOOTSTRAP)/bin/pip install -q uv

setup: $(if $(filter uv,$(UV)),,$(UV_BOOTSTRAP)/bin/uv)
	$(UV) sync --frozen
	$(RUN) testbed setup

demo: setup
	$(RUN) testbed demo

test: setup
	$(RUN) ruff check .
	$(RUN) mypy
	$(RUN) pytest -n $(TEST_STACKS) $(PYTEST_ARGS)

lint:
	$(RUN) ruff check .
	$(RUN) mypy

down:
	$(RUN) testbed down
