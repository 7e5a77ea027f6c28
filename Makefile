# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install when needed.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The local CPU wheel; an unpinned torch pulls a CUDA build of several GB. Installed before the project.
TORCH_VERSION := 2.13.0
PIP := $(BIN)/python -m pip --disable-pip-version-check
# Build sdists (seqeval) the PEP 517 way: Debian's venv has pip 23.0, whose legacy `setup.py egg_info` lets setuptools
# fetch setup_requires itself, and it took setuptools_scm 10 without its vcs_versioning (found by make fresh-check).
PEP517 := --use-pep517
# One OpenMP thread per process: on this 2-core class of machine torch is ~50x faster that way.
export OMP_NUM_THREADS ?= 1
# Every tool a target needs beyond Python's packages is made sure of by scripts/ensure-tools.sh: present, else
# installed from Debian's packages (as root), else one line naming the package and a non-zero exit (or, for tools
# only some tests need, a line and the tests skip). tests/unit/test_make_tools.py checks each target the README
# names. `make tools-TARGET` runs only that step; `make fresh-check` runs them on a fresh Debian container.
ENSURE := bash scripts/ensure-tools.sh

.PHONY: install ui ui-test demo test docs lint typecheck bench deploy clean infra-tools image docker-stop stack-test \
	fresh-check tools-image tools-stack-test tools-bench tools-fresh-check

# Python >= 3.11 with venv (Debian's python3 and python3-venv where missing). PYTHON is looked up again in the
# recipe's shell: make expands the recipe before the first line runs, and ensure-tools may just have installed it.
$(BIN)/python:
	@PYTHON='$(PYTHON)' $(ENSURE) --for "make (the virtual environment)" python venv
	@py='$(PYTHON)'; py=$${py:-$$(command -v python3.11 || command -v python3)}; \
		echo "$$py -m venv $(VENV)"; "$$py" -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	@$(BIN)/python -c 'import torch' 2>/dev/null || { echo "installing torch==$(TORCH_VERSION) (CPU)"; $(PIP) install -q torch==$(TORCH_VERSION); }
	$(PIP) install -q $(PEP517) -c constraints.txt -e ".[dev,english,docs]"
	@touch $@

install: $(STAMP) ui

# The web canvas (ui/ -> openautoglm/serve/ui_dist, served at /ui), rebuilt when its sources or lock change;
# skipped with a line where Node >= 20.19 and npm are missing (an error under CI=true, where the canvas is tested).
UI_STAMP := openautoglm/serve/ui_dist/.built
UI_SOURCES := $(shell find ui/src -type f) $(addprefix ui/,index.html package.json package-lock.json vite.config.ts tsconfig.json)

ui: $(UI_STAMP)

$(UI_STAMP): $(UI_SOURCES)
	@if $(ENSURE) --for "make ui" --without "the web canvas (/ui) is not built" npm; then \
		cd ui && npm ci --no-audit --no-fund && npm run build && touch ../$(UI_STAMP); \
	elif [ "$$CI" = true ]; then exit 1; fi

ui-test: ui
	@if $(ENSURE) --for "make ui-test" --without "the canvas unit tests are skipped" npm; then npm --prefix ui test; \
	elif [ "$$CI" = true ]; then exit 1; fi

# The seed's quick start as written (offline: no Zhipu key needed), then the same task as a tracked Prefect flow.
demo: install
	OPENAUTOGLM_FALLBACK_MODEL=local-auto $(BIN)/python examples/quickstart.py
	$(BIN)/openautoglm run examples/user_feedback.csv --model local-auto --labels 正面,负面,中性 --label-column label

# infra-tools: the tools of the infra, fault and browser tests (a line naming them where they cannot be installed).
# docs: the docs site's strict build, so a broken link or a missing page fails CI too.
test: install ui-test infra-tools docs
	$(BIN)/python -m pytest

# The docs site (mkdocs.yml, docs/) into build/site, --strict: a broken link, a nav entry without its page or a
# page left out of the nav fails (not --quiet: it hides the warnings --strict counts). The CLI and REST references
# are generated from the code at build time (docs/hooks/reference.py).
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: install
	$(BIN)/ruff check openautoglm tests bench
	$(BIN)/mypy

# bench/canvas.py drives the built canvas in Chromium.
tools-bench:
	@$(ENSURE) --for "make bench" npm chromium

bench: tools-bench install
	$(PIP) install -q $(PEP517) -c constraints.txt -e ".[dev,bench]"
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
# Its tools are ensured where the build needs them: docker.io where no daemon answers (docker-daemon.sh), debootstrap
# where no registry does (make-base-image.sh); tools-image ensures both, as a machine with neither needs.
image: | $(BIN)/python
	@bash infra/docker/build-image.sh

tools-image:
	@$(ENSURE) --for "make image" docker debootstrap

# The compose stack on this machine (infra/compose.yaml + compose.local.yaml: services from Debian's packages, an
# internal network), its checks, then down with its volumes (75 s here). Needs `make image` first.
# STACK_ARGS=--serving-only starts only the API side (no Prefect, MLflow or Dask: no deployment run).
# The project is installed first: the script mints the test's token with openautoglm.serve.tokens.
tools-stack-test:
	@$(ENSURE) --for "make stack-test" docker compose openssl

stack-test: tools-stack-test $(STAMP)
	$(BIN)/python scripts/stack_test.py $(STACK_ARGS)

# Stops the dockerd that `make image` started (by its pid file), if any.
docker-stop:
	@pid=$$(cat /run/open-autoglm-dockerd.pid 2>/dev/null) && kill $$pid && echo "dockerd $$pid stopped" || echo "no dockerd started by make image"

# The README's set-up paths on a fresh machine: a clean clone of HEAD in a throwaway container of the offline Debian
# base (make-base-image.sh), running make demo and each target's tool step (scripts/fresh_check.py; its time is in
# README, Development).
# FRESH_ARGS: see python3 scripts/fresh_check.py --help.
tools-fresh-check:
	@$(ENSURE) --for "make fresh-check" docker debootstrap git

fresh-check: tools-fresh-check
	@"$${PYTHON:-python3}" scripts/fresh_check.py $(FRESH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache ui/node_modules openautoglm/serve/ui_dist build/site
