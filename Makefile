# Two commands for a new user (README.md):
#   make reproduce   create .venv on first use, then run every notebook on the default data
#   make test        create .venv on first use, then run the test suite
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PARAMS ?= params/quick.yml
OUTPUTS ?= outputs
STAMP := $(VENV)/.seaice-installed
# Horovod 0.28.1 is built from source against the installed TensorFlow, with Gloo (no MPI needed).
HOROVOD_ENV := HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
	HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1

.PHONY: reproduce test venv lab bench clean-outputs strip-notebooks

venv: $(STAMP)

$(STAMP): requirements.txt requirements-build.txt requirements-horovod.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==24.3.1
	$(BIN)/pip install --quiet -r requirements-build.txt -r requirements.txt
	$(HOROVOD_ENV) $(BIN)/pip install --quiet --no-build-isolation -r requirements-horovod.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import horovod.tensorflow, pyspark, cv2, papermill; print('environment ready')"
	@touch $@

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
