# Quick start: `make demo` and `make test`. Everything lives in .venv; only python3, make and git are needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo demo-api demo-queue demo-durable bench-sqs test fuzz lint typecheck check clean bench bench-quick bench-coldstart

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Editable installs in "compat" mode: a plain path in a .pth file. The default mode installs an import-hook
# finder whose imports (importlib.util, contextlib, re) cost ~15 ms of `site` in every Python process this
# venv starts, so in every function's cold start. Falls back to the default mode where compat is gone.
EDITABLE = --config-settings editable_mode=compat
# setuptools says at length, on every install, that compat mode is transitional: known, and chosen above.
QUIET_BUILD = PYTHONWARNINGS=ignore

$(STAMP): pyproject.toml | $(BIN)/python
	$(QUIET_BUILD) $(BIN)/python -m pip install --quiet -e . $(EDITABLE) || $(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(QUIET_BUILD) $(BIN)/python -m pip install --quiet -e '.[test]' $(EDITABLE) || $(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

demo-api: $(STAMP)
	$(BIN)/python examples/api/demo.py

# An SQS-triggered function (examples/queue/): moto's SQS server (the test extra's moto[server]), the queue,
# rapidboot polling it, orders sent and taken, one retried through a partial batch response.
demo-queue: $(TEST_STAMP)
	$(BIN)/python examples/queue/demo.py

# The order workflow of examples/durable (AWS's Durable Execution SDK, from the test extra): steps, a day's
# wait (a second here), an approval given with `rapidboot callback succeed`.
demo-durable: $(TEST_STAMP)
	$(BIN)/python examples/durable/demo.py

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q

# The property and fuzz suite against a live server (tests/e2e/test_e2e_fuzz.py), at length: `make test` runs
# a few dozen examples of each generator; this runs FUZZ_EXAMPLES of each (~1.5 min per 1000), and shrinks a
# failing one to its simplest form.
FUZZ_EXAMPLES ?= 1000
fuzz: $(TEST_STAMP)
	RAPIDBOOT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q tests/e2e/test_e2e_fuzz.py

lint: $(TEST_STAMP)
	$(BIN)/ruff check runtime rapid_server layers tests examples benchmarks
	$(BIN)/ruff format --check runtime rapid_server layers tests examples benchmarks

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# The whole comparison against the peers (bench-quick: fewer repetitions): a table in the terminal, and
# report.md, results.json and PNG charts in bench-results/. How long each takes: `rapidboot bench --help`.
bench: $(TEST_STAMP)
	$(BIN)/rapidboot bench $(BENCH_FLAGS)
	$(BIN)/python -m rapidboot.benchmarks.sqs_mapping

# An SQS event source mapping draining 10,000 messages from moto's server (about a minute; part of `bench`).
bench-sqs: $(TEST_STAMP)
	$(BIN)/python -m rapidboot.benchmarks.sqs_mapping

bench-quick: $(TEST_STAMP)
	$(BIN)/rapidboot bench --quick $(BENCH_FLAGS)

# Cold start, idle RSS and in-runtime invoke time: our bootstrap vs awslambdaric vs a bare-socket floor.
bench-coldstart: $(TEST_STAMP)
	$(BIN)/python benchmarks/coldstart.py
