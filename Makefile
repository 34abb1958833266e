# Two commands for a new user (README.md):
#   make reproduce   create .venv on first use, then run every notebook on the default data
#   make test        create .venv on first use, then run the test suite
# The environment is Python 3.11 on Linux x86-64 only: the pinned TensorFlow 2.15.1 (tensorflow-cpu)
# and Horovod 0.28.1's source build serve no other platform (README, "Environment").
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PARAMS ?= params/quick.yml
OUTPUTS ?= outputs
STAMP := $(VENV)/.seaice-installed
PIP_VERSION := 24.3.1
# What .venv is installed from: the full resolved set (reproducible). `make venv
# REQUIREMENTS=requirements.txt` resolves the exact pins' dependencies afresh instead (GPU nodes).
REQUIREMENTS ?= requirements.lock
# `make lock` rebuilds requirements.lock here, from requirements-build.txt + requirements.txt.
LOCK_VENV ?= /tmp/seaice-lock-venv
# The machine, as `uname -s`-`uname -m`; the check below refuses anything but Linux-x86_64.
PLATFORM ?= $(shell uname -s)-$(shell uname -m)
# The Python the check looks at: the venv's once it exists, else the one that will create it.
CHECK_PYTHON = $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
# Horovod 0.28.1 is built from source against the installed TensorFlow, with Gloo (no MPI needed).
HOROVOD_ENV := HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
	HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1
# JupyterLab settings for this environment: save widget state with the notebook, so a saved
# notebook 02 reopens with the last tuner as a static view, not "Error displaying widget: model
# not found". Merged into an existing overrides.json (other settings kept).
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
SAVE_WIDGET_STATE := import json, pathlib, sys; \
	p = pathlib.Path(sys.argv[1]); p.parent.mkdir(parents=True, exist_ok=True); \
	s = json.loads(p.read_text()) if p.is_file() else {}; \
	s.setdefault("@jupyter-widgets/jupyterlab-manager:plugin", {})["saveState"] = True; \
	p.write_text(json.dumps(s, indent=2) + "\n")

.PHONY: reproduce test venv lab bench clean-outputs strip-notebooks check-platform lock

venv: $(STAMP)

# Runs before anything is installed (and before every target that needs .venv).
check-platform:
	@if [ "$(PLATFORM)" != "Linux-x86_64" ]; then \
	  echo "make: this compendium's environment needs Linux on x86-64; this machine is $(PLATFORM)." >&2; \
	  echo "  The pinned TensorFlow 2.15.1 (tensorflow-cpu) and Horovod 0.28.1's source build serve" >&2; \
	  echo "  no other platform. Use Docker or a Linux x86-64 VM/host; see README, \"Environment\"." >&2; \
	  exit 1; fi
	@if [ -z "$(CHECK_PYTHON)" ]; then \
	  echo "make: no python3.11 (or python3) on PATH. Install Python 3.11, or pass PYTHON=/path/to/python3.11." >&2; \
	  exit 1; fi
	@if ! "$(CHECK_PYTHON)" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then \
	  echo "make: $(CHECK_PYTHON) is Python $$("$(CHECK_PYTHON)" -c 'import platform; print(platform.python_version())' 2>/dev/null || echo '(not runnable)'), but the pinned packages need Python 3.11." >&2; \
	  echo "  Install Python 3.11 and pass PYTHON=/path/to/python3.11$(if $(wildcard $(BIN)/python), after removing $(VENV)/,)." >&2; \
	  exit 1; fi

$(STAMP): $(REQUIREMENTS) requirements-build.txt requirements-horovod.txt pyproject.toml | check-platform
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet -r requirements-build.txt -r $(REQUIREMENTS)
	$(HOROVOD_ENV) $(BIN)/pip install --quiet --no-build-isolation -r requirements-horovod.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -c '$(SAVE_WIDGET_STATE)' $(LAB_OVERRIDES)
	$(BIN)/python -c "import horovod.tensorflow, pyspark, cv2, papermill; print('environment ready')"
	@touch $@

# After changing a pin in requirements*.txt: resolve the full set afresh in a scratch venv and
# write it to requirements.lock (its comment header is kept). Downloads; a few minutes.
lock: check-platform
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip==$(PIP_VERSION)
	$(LOCK_VENV)/bin/pip install --quiet -r requirements-build.txt -r requirements.txt
	{ grep '^#' requirements.lock; $(LOCK_VENV)/bin/pip list --format=freeze --exclude pip; } \
	  > requirements.lock.new
	mv requirements.lock.new requirements.lock
	rm -rf $(LOCK_VENV)

reproduce: $(STAMP)
	$(BIN)/seaice reproduce --params $(PARAMS) --outputs $(OUTPUTS)

test: $(STAMP)
	$(BIN)/python -m pytest

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

bench: $(STAMP)
	$(BIN)/python tests/benchmarks/bench_labelling.py all --root /tmp/seaice-bench

clean-outputs:
	find $(OUTPUTS) -mindepth 1 ! -name README.md -delete

strip-notebooks: $(STAMP)
	$(BIN)/seaice notebooks strip notebooks/*.ipynb
