# Two commands for a fresh machine with Python 3.11: `make demo` and `make test`.
# Each creates the virtual environment on first use and reinstalls when the
# package metadata changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
STAMP := $(VENV)/.installed
PIP_FLAGS ?= --quiet --disable-pip-version-check
# Every optional feature (the demo runs CP decomposition, the tests cover the
# plots too) and the test tools (pytest, ruff).
EXTRAS ?= all,test

.PHONY: demo test lint install benchmarks clean

$(STAMP): pyproject.toml setup.py
	@echo ">> creating $(VENV) with $(PYTHON) and installing tfcompress (first run takes a few minutes)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) -e ".[$(EXTRAS)]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tfcompress demo

# Correctness checks only (see [tool.ruff] in pyproject.toml); never rewrites.
lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Two worker processes (pytest-xdist): TensorFlow leaves a core idle in
# much of the suite (graph tracing, conversion), so two workers finish it in
# about half the time on a 2-core machine. Tests of one zoo model stay on
# one worker (--dist loadgroup), which trains that model once. The slowest
# tests are listed at the end.
TEST_WORKERS ?= 2

test: $(STAMP) lint
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15 tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
