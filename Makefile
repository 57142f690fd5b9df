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

# Two pytest processes: with napari's packages loaded, one process that also runs the napari tests passes them all
# and then aborts in the garbage collector at interpreter exit (exit 134). The first run leaves napari out and needs
# no X display (-p no:xvfb); the second runs tests/napari under pytest-xvfb's virtual display (they skip without Xvfb).
test: lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:xvfb --ignore=tests/napari $(PYTEST_ARGS)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q tests/napari

# ruff, then mypy on imcsr_live/ ([tool.mypy] in pyproject.toml; about 1.5 min on 2 cores without a cache)
lint: $(STAMP)
	$(BIN)/ruff check imcsr_live tests tools
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python tools/bench_synth.py

clean:
	rm -rf $(VENV) build *.egg-info
