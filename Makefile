# Tasks API. `make run` serves with demo data; `make test` runs the suite.
# Both build .venv from the pinned lock file first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
FLASK  := $(BIN)/flask --app wsgi
HOST   ?= 127.0.0.1
PORT   ?= 5000

.DEFAULT_GOAL := help
.PHONY: help install node-tools run serve test contract lint fmt typecheck security openapi openapi-check spec-validate spec-lint spec-diff migrate check lock bench clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements/lock.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c requirements/lock.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## Create .venv with the pinned dependencies

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

migrate: install  ## Upgrade the database to the newest migration
	$(FLASK) db upgrade

run: migrate  ## Migrate, seed demo data, serve on 127.0.0.1:5000 with /docs
	$(FLASK) seed-demo
	@echo "Tasks API on http://$(HOST):$(PORT)  -  docs: http://$(HOST):$(PORT)/docs"
	$(FLASK) run --host $(HOST) --port $(PORT)

serve: migrate  ## Serve with gunicorn (gunicorn.conf.py; WEB_CONCURRENCY workers)
	HOST=$(HOST) PORT=$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: install  ## Run the whole test suite with coverage
	$(BIN)/pytest --cov --cov-report=term

contract: install  ## schemathesis CLI, every check, against gunicorn on a fresh database
	$(BIN)/python -m contract.run_cli --max-examples $${CONTRACT_MAX_EXAMPLES:-50}

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

spec-lint: node-tools  ## Lint the spec: Spectral (OWASP, .spectral.yaml) and Redocly (redocly.yaml)
	$(NODE_ENV) $(NODE_BIN)/spectral lint openapi/openapi.json --ruleset .spectral.yaml --fail-severity=warn
	$(NODE_ENV) $(NODE_BIN)/redocly lint openapi/openapi.json --config redocly.yaml

spec-diff: install node-tools  ## Fail on a breaking change against the newest openapi/releases/ (Optic)
	$(NODE_ENV) $(BIN)/python -m contract.spec_diff --optic $(NODE_BIN)/optic

security: install  ## bandit over the code (findings justified inline with nosec)
	$(BIN)/bandit -q -r api schemas wsgi.py gunicorn.conf.py

check: lint typecheck security openapi-check spec-validate spec-lint spec-diff  ## Every gate but the tests

lock: install  ## Re-pin every dependency into requirements/lock.txt
	$(BIN)/python -m pip freeze --exclude-editable --exclude tasks-api > requirements/lock.txt

bench: install  ## Benchmark against raw Flask, FastAPI and a bare /ping (prints figures)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements/lock.txt -r bench/requirements.txt
	@command -v wrk > /dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.run

clean:  ## Remove the virtualenv and caches
	rm -rf $(VENV) $(NODE_MODULES) .pytest_cache .mypy_cache .ruff_cache .coverage
