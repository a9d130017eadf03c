# The two commands a newcomer needs: `make demo` and `make test`. Everything else is here for them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
export PYTHONPATH := $(CURDIR):$(CURDIR)/model-build:$(CURDIR)/model-deploy

.PHONY: help venv test lint unit lock demo bench clean

help: ## List the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.lock
	@echo "==> Python environment: $(VENV) from requirements-dev.lock (uv $(UV_VERSION))"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || { $(PY) -m pip --version >/dev/null 2>&1 || $(PY) -m ensurepip >/dev/null; \
		$(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION); }
	@# Bytecode is compiled at install: this machine sets PYTHONDONTWRITEBYTECODE, and the SageMaker
	@# SDK imports three times slower without it.
	@$(UV) pip sync -q --compile-bytecode --python $(PY) requirements-dev.lock
	@touch $@

venv: $(VENV)/.installed ## Create .venv with the pinned dependencies

lint: venv ## ruff on the whole repo
	@echo "==> ruff"
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

unit: venv ## pytest on every test folder
	@echo "==> pytest"
	@$(VENV)/bin/pytest

test: lint unit ## Lint and run the whole test suite

lock: venv ## Re-resolve requirements-dev.lock and each repo's requirements.txt
	$(UV) pip compile -q --python-version 3.11 requirements-dev.in -o requirements-dev.lock
	$(UV) pip compile -q --python-version 3.11 -c requirements-dev.lock model-build/requirements.in -o model-build/requirements.txt
	$(UV) pip compile -q --python-version 3.11 -c requirements-dev.lock model-deploy/requirements.in -o model-deploy/requirements.txt

demo: venv ## The whole loop offline: build -> register -> approve -> deploy -> staging tests -> prod (DATA=csv|s3://|uci)
	@echo "==> make demo: the model-build pipeline, approval and deploy pipeline on the local stack"
	@$(PY) scripts/demo.py

bench: venv ## Print speed figures: definition build, pipeline cold/cached, runtime latency, whole demo
	@echo "==> make bench: measuring on this machine (about a minute)"
	@$(PY) scripts/bench.py

clean: ## Remove environments and local state
	rm -rf $(VENV) .local .pytest_cache .ruff_cache
