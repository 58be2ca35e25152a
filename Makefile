# Two commands for a fresh machine (see README): `make demo` and `make test`.
# Everything installs into .venv; OpenSearch itself is fetched from Maven Central on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The package folders are mapped under the `ltrr` namespace through a link tree (setuptools'
# strict editable mode), so adding or removing a module re-runs the install.
PACKAGE_DIRS := $(shell find plugin bandit query_plans templates -type d -not -name __pycache__)
# Where the demo's data, the sentence model and extra plugins live; override for files elsewhere.
SHARED ?= ../shared
LASTFM ?= $(SHARED)/datasets/lastfm-hetrec2k
export LTRR_MODEL_DIR ?= $(abspath $(SHARED)/models/all-MiniLM-L6-v2-onnx)
# Plugin zips Maven Central does not serve (the LTR plugin), installed into the local node.
export LTRR_PLUGIN_DIR ?= $(abspath $(SHARED)/plugins)

.PHONY: demo test lint format clean

$(BIN)/.installed: pyproject.toml $(PACKAGE_DIRS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]' --config-settings editable_mode=strict
	touch $@

demo: $(BIN)/.installed
	$(BIN)/ltrr demo --source $(LASTFM) $(DEMO_ARGS)

test: $(BIN)/.installed
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p ltrr.plugin -p ltrr.bandit -p ltrr.query_plans

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info
