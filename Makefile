# Kizuna: `make run` starts the whole system, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv/bin

.PHONY: help setup setup-python setup-web run test test-api lint test-web test-e2e test-verifier test-packages bench bench-api bench-integrate bench-web bench-load bench-pages

help:
	@echo "make run    install what is needed and start API + web (http://localhost:3000)"
	@echo "make test   run every test (API, verifier, web unit, browser end-to-end, packages + example)"
	@echo "make bench  run the benchmarks"

setup-python:
	@./scripts/setup-python.sh

setup-web:
	@./scripts/setup-web.sh

setup: setup-python setup-web

run: setup
	@./scripts/run.sh

lint: setup-python
	cd api && ../$(VENV)/ruff check src tests && ../$(VENV)/ruff format --check src tests && ../$(VENV)/mypy

# The whole suite on SQLite, then on PostgreSQL (api/README.md, "Tests on both databases").
test-api: setup-python lint
	@./scripts/setup-services.sh
	@./scripts/test-api.sh

test-web: setup-python setup-web
	@./scripts/test-web.sh

test-e2e: setup-python setup-web
	@./scripts/test-e2e.sh

test-verifier: setup-python
	@./scripts/test-verifier.sh

# Builds the wheels, sdists and npm tarball into dist/ and runs the notes example on them.
test-packages: setup-python setup-web
	@./scripts/test-packages.sh

test: test-api test-verifier test-web test-e2e test-packages test-cluster test-scale

bench-api: setup-python
	$(VENV)/python bench/api/run.py

bench-web: setup-python setup-web
	./bench/web/run.sh

bench-integrate: setup-python
	$(VENV)/python bench/api/integrate.py

# Does load ever log anyone out? 200 users x 3 racing tabs through one web process (issue 11).
bench-load: setup-python setup-web
	./web/scripts/build.sh --if-stale
	node bench/web/load.mjs

# Server-rendered pages/s of one web process, and with 2 web processes / 2 API workers.
bench-pages: setup-python setup-web
	./web/scripts/build.sh --if-stale
	node bench/web/pages.mjs

bench: bench-api bench-integrate bench-web

# The scale-out topology on loopback (deploy/README.md): nginx (TLS, HTTP/2) → 2 web
# replicas → 2 API replicas → PostgreSQL + Redis. `make cluster` starts it and returns;
# `make cluster-down` stops it; `make test-cluster` runs the HTTPS browser tests on it.
.PHONY: cluster cluster-down test-cluster test-scale

cluster: setup
	@if [ "$$(id -u)" -eq 0 ]; then ./scripts/setup-services.sh; fi
	@./deploy/cluster/cluster.sh up

cluster-down:
	@./deploy/cluster/cluster.sh down

test-cluster: setup
	@./scripts/test-cluster.sh

# Short versions of the scale-out runs (load + faults through the cluster, stored sessions,
# admin pages); the full ones: bench/README.md.
test-scale: setup
	@./scripts/test-scale.sh
