# Kizuna: `make run` starts the whole system, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv/bin

.PHONY: help setup setup-python setup-web run test test-api lint test-web test-e2e bench bench-api bench-web

help:
	@echo "make run    install what is needed and start API + web (http://localhost:3000)"
	@echo "make test   run every test (API, web unit, browser end-to-end)"
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

test-api: setup-python lint
	@./scripts/setup-services.sh
	cd api && ../$(VENV)/pytest -q

test-web: setup-python setup-web
	@./scripts/test-web.sh

test-e2e: setup-python setup-web
	@./scripts/test-e2e.sh

test: test-api test-web test-e2e

bench-api: setup-python
	$(VENV)/python bench/api/run.py

bench-web: setup-python setup-web
	./bench/web/run.sh

bench: bench-api bench-web
