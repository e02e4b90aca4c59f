# `make demo` and `make test` each set up .venv first when it is missing or stale.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PYTHON  ?= python3
STAMP   := $(VENV)/.installed-stamp

.PHONY: setup demo test test-fast bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: a plain `torch` would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The demo runs in its own workspace (./lethe-demo), made fresh each time.
DEMO_HOME ?= ./lethe-demo

demo: setup
	rm -rf $(DEMO_HOME)
	$(VENV)/bin/lethe --home $(DEMO_HOME) demo --summary benchmarks/results/demo.json

test: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not browser and not postgres"

bench: setup
	$(PY) benchmarks/ledger.py
	$(PY) benchmarks/train.py
	$(PY) benchmarks/unlearn.py
	$(PY) benchmarks/serve.py

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) lethe-home lethe-demo .pytest_cache
