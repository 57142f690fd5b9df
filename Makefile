# Two set-up commands for a fresh machine (see README):
#   make demo   - create .venv, install everything, run the demo on the simulated microscope
#   make test   - create .venv, install everything, lint (ruff + mypy), run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	# CPU build from the local wheel cache; keep it pinned (an unpinned torch pulls a CUDA build).
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/imcsr-live demo $(DEMO_ARGS)

test: lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q $(PYTEST_ARGS)

# ruff, then mypy on imcsr_live/ ([tool.mypy] in pyproject.toml; about 1.5 min on 2 cores without a cache)
lint: $(STAMP)
	$(BIN)/ruff check imcsr_live tests tools
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python tools/bench_synth.py

clean:
	rm -rf $(VENV) build *.egg-info
