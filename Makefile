# mss-companion — `make` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
export UV_LINK_MODE ?= copy

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: install
install: ## Install uv (if missing) and the Python dependencies
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --quiet

.PHONY: system-packages
system-packages: ## Install Debian packages the tests use (Chromium, Dovecot) when missing
	@bash scripts/system-packages.sh

.PHONY: services
services: ## Start Redis and PostgreSQL if they are not running
	@bash scripts/services.sh

.PHONY: demo
demo: install ## Serve the demo at http://localhost:8000 (SQLite, in-process stores, PSC sandbox, local Dovecot with demo mail)
	@bash scripts/system-packages.sh --demo
	@$(UV) run mss-companion serve

.PHONY: test
test: install system-packages services ## Run the whole test suite (pytest's "no tests" counts as a failure)
	@$(UV) run pytest $(PYTEST_ARGS); status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

.PHONY: lint
lint: install ## Ruff, mypy, and the committed OpenAPI document is current
	@$(UV) run ruff check .
	@$(UV) run ruff format --check .
	@$(UV) run mypy
	@$(UV) run mss-companion openapi --check

.PHONY: format
format: install ## Format and fix what ruff can
	@$(UV) run ruff format .
	@$(UV) run ruff check --fix .

.PHONY: openapi
openapi: install ## Regenerate contracts/openapi.json
	@$(UV) run mss-companion openapi

.PHONY: bench
bench: install services ## Run the benchmarks (figures and ratios on the last line of each)
	@$(UV) run python bench/enrolment.py
	@$(UV) run python bench/push.py
