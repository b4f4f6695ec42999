# Two commands: `make demo` and `make test`. Each does its whole set-up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Workers of `make test` (pytest-xdist, one test file per worker at a time).
TEST_WORKERS ?= 3

.PHONY: demo test test-fast lint fmt tools render lock bench clean

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

# Everything, the slow end-to-end tests included; `make test-fast` is the inner loop.
# PYTHONFAULTHANDLER: a crash after pytest's own handler is gone (at interpreter exit)
# still prints every thread's traceback (tests/conftest.py says why none should happen).
# pytest fails on its own when it collects no test (exit 5) or fewer than the suite's
# floor (tests/conftest.py, MINIMUM_TESTS): no green run that ran nothing.
# mypy reads its strictness (the policy, the snapshot contract) from pyproject.toml.
MYPY_PATHS := batchctl exporter autoscaler alerts grafana benchmarks

test: $(STAMP) tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy $(MYPY_PATHS)
	PYTHONFAULTHANDLER=1 $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --durations=15

# The inner loop (under 30 s): every test that starts no server and no process, with
# hypothesis properties at a tenth of their examples. No tools to install.
test-fast: $(STAMP)
	BATCHCTL_TEST_INNER_LOOP=1 PYTHONFAULTHANDLER=1 $(BIN)/pytest -m "not integration" -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(MYPY_PATHS)
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerate the committed renders (tests fail when they drift): the defaults' rules and
# dashboard in alerts/ and grafana/, and the example site's overlay, rendered from its
# config as any site renders its own (`batchctl render k8s`, docs/deploy.md).
EXAMPLE := k8s/overlays/example
render: $(STAMP)
	$(BIN)/batchctl alerts render --output alerts/batchctl.rules.yml
	$(BIN)/batchctl dashboard render --output grafana/batchctl.json
	$(BIN)/batchctl render k8s -c $(EXAMPLE)/batchctl.yml --base k8s/base \
		--image registry.example.com/platform/batchctl --output $(EXAMPLE)/batchctl

# The container's dependencies: pyproject.toml's runtime ones (no dev extra), pinned with
# every file's hash, for Python 3.11 on any platform. The Dockerfile installs only these.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --universal --python-version 3.11 \
		--custom-compile-command "make lock" --quiet --output-file requirements.lock

bench: $(STAMP) tools
	$(BIN)/python -m benchmarks.scrape_latency

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
