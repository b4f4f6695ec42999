# Two commands: `make demo` and `make test`. Each does its whole set-up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint fmt tools render bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian's prometheus, promtool, alertmanager and chromium for the real-binary tests.
tools:
	bash scripts/ensure-tools.sh

demo: $(STAMP)
	$(BIN)/batchctl demo

# Everything, the slow end-to-end tests included; `pytest -m "not slow"` is the inner loop.
test: $(STAMP) tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy batchctl exporter autoscaler alerts grafana
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerate the committed alert rules and dashboard (tests fail when they drift).
render: $(STAMP)
	$(BIN)/batchctl alerts render --output alerts/batchctl.rules.yml
	$(BIN)/batchctl dashboard render --output grafana/batchctl.json
	cp alerts/batchctl.rules.yml k8s/rules/batchctl.rules.yml
	cp grafana/batchctl.json k8s/dashboards/batchctl.json

bench: $(STAMP) tools
	$(BIN)/python benchmarks/scrape_latency.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
