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
.PHONY: help install run serve test contract mutation lint fmt typecheck security openapi openapi-check spec-validate migrate check lock bench clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements/lock.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c requirements/lock.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## Create .venv with the pinned dependencies

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

security: install  ## bandit over the code (findings justified inline with nosec)
	$(BIN)/bandit -q -r api schemas wsgi.py gunicorn.conf.py

check: lint typecheck security openapi-check spec-validate  ## Every gate but the tests

lock: install  ## Re-pin every dependency into requirements/lock.txt
	$(BIN)/python -m pip freeze --exclude-editable --exclude tasks-api > requirements/lock.txt

bench: install  ## Benchmark against raw Flask, FastAPI and a bare /ping (prints figures)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements/lock.txt -r bench/requirements.txt
	@command -v wrk > /dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.run

clean:  ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
