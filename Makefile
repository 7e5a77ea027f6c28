# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install when needed.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The local CPU wheel; an unpinned torch pulls a CUDA build of several GB. Installed before the project.
TORCH_VERSION := 2.13.0
PIP := $(BIN)/python -m pip --disable-pip-version-check
# One OpenMP thread per process: on this 2-core class of machine torch is ~50x faster that way.
export OMP_NUM_THREADS ?= 1

.PHONY: install ui ui-test demo test lint typecheck bench deploy clean infra-tools image docker-stop stack-test

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	@$(BIN)/python -c 'import torch' 2>/dev/null || { echo "installing torch==$(TORCH_VERSION) (CPU)"; $(PIP) install -q torch==$(TORCH_VERSION); }
	$(PIP) install -q -c constraints.txt -e ".[dev,english]"
	@touch $@

install: $(STAMP) ui

# The web canvas (ui/ -> openautoglm/serve/ui_dist, served at /ui), rebuilt when its sources or lock change;
# skipped with a line where npm is missing (an error under CI=true, where the canvas is tested).
UI_STAMP := openautoglm/serve/ui_dist/.built
UI_SOURCES := $(shell find ui/src -type f) $(addprefix ui/,index.html package.json package-lock.json vite.config.ts tsconfig.json)

ui: $(UI_STAMP)

$(UI_STAMP): $(UI_SOURCES)
	@if command -v npm >/dev/null; then \
		cd ui && npm ci --no-audit --no-fund && npm run build && touch ../$(UI_STAMP); \
	elif [ "$$CI" = true ]; then echo "npm not found: the web canvas (/ui) cannot be built (install Node 20)" >&2; exit 1; \
	else echo "npm not found: the web canvas (/ui) is not built"; fi

ui-test: ui
	@if command -v npm >/dev/null; then npm --prefix ui test; \
	elif [ "$$CI" = true ]; then echo "npm not found: the canvas unit tests cannot run (install Node 20)" >&2; exit 1; \
	else echo "npm not found: canvas unit tests skipped"; fi

# The seed's quick start as written (offline: no Zhipu key needed), then the same task as a tracked Prefect flow.
demo: install
	OPENAUTOGLM_FALLBACK_MODEL=local-auto $(BIN)/python examples/quickstart.py
	$(BIN)/openautoglm run examples/user_feedback.csv --model local-auto --labels 正面,负面,中性 --label-column label

test: install ui-test
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check openautoglm tests bench
	$(BIN)/mypy

bench: install
	$(PIP) install -q -c constraints.txt -e ".[dev,bench]"
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/nlp.py
	$(BIN)/python bench/canvas.py

# Register deployments/prefect.yaml on the Prefect server in PREFECT_API_URL (prefect server start).
deploy: install
	$(BIN)/openautoglm deploy

# What the infra tests run (nginx -t, promtool, a real Pushgateway, compose config), from Debian's packages when
# missing (root). .ci/run calls it before `make test`; without the tools the tests skip locally and fail in CI.
infra-tools:
	@bash scripts/install-infra-tools.sh

# The Docker image (infra/docker/Dockerfile). Without a registry: a Debian base made here and a wheelhouse from
# pip, built with no network (infra/docker/build-image.sh). Starts dockerd (overlay2, else vfs) as root if none answers.
image: | $(BIN)/python
	@bash infra/docker/build-image.sh

# The compose stack on this machine (infra/compose.yaml + compose.local.yaml: services from Debian's packages, an
# internal network), its checks, then down with its volumes (75 s here). Needs `make image` first.
# STACK_ARGS=--serving-only starts only the API side (no Prefect, MLflow or Dask: no deployment run).
stack-test: | $(BIN)/python
	$(BIN)/python scripts/stack_test.py $(STACK_ARGS)

# Stops the dockerd that `make image` started (by its pid file), if any.
docker-stop:
	@pid=$$(cat /run/open-autoglm-dockerd.pid 2>/dev/null) && kill $$pid && echo "dockerd $$pid stopped" || echo "no dockerd started by make image"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache ui/node_modules openautoglm/serve/ui_dist
