# mlcycle: `make help` lists the targets. Every target sets up .venv first when needed.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# JupyterLab defaults of the workspace (a user's own Lab settings still win): no news feed or update
# check, so the Lab makes no request beyond localhost
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export MPLBACKEND := Agg
PYTEST_ARGS ?=
# tests run in TEST_WORKERS processes (pytest-xdist), a whole file per process so that a file's shared
# workspace is built once; TEST_WORKERS=0 runs them in this process, one after another
TEST_WORKERS ?= 2
XDIST = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)
# the workspace's tracking store; `source .venv/bin/activate` points bare `mlflow` commands, `mlflow ui`
# and notebooks at it (MLFLOW_TRACKING_URI, unless already set; params `tracking.uri` still wins in stages)
STORE_URI := sqlite:///$(CURDIR)/mlruns/mlflow.db
ACTIVATE_MARK := mlcycle: bare mlflow commands and notebooks use the workspace's tracking store
# while the local team stack runs (`make team-up`), its MLFLOW_TRACKING_URI and S3 settings apply
-include .team/env

# requirements.lock: every package (the dev extra included) at an exact version with its hashes, for
# Python 3.11 on x86-64 Linux; `make lock` writes it from pyproject.toml, then installs it and pins the image
LOCK_COMMAND := uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
  --python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock" --quiet --output-file requirements.lock

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name mlcycle --display-name "Python (mlcycle)" >/dev/null
	@grep -q "$(ACTIVATE_MARK)" $(BIN)/activate || printf '%s\n' "" "# $(ACTIVATE_MARK) (unless already set)" \
	  'if [ -z "$${MLFLOW_TRACKING_URI:-}" ]; then' \
	  '  export MLFLOW_TRACKING_URI="$(STORE_URI)" MLCYCLE_DEFAULT_STORE="$(STORE_URI)"' \
	  '  export MLFLOW_BACKEND_STORE_URI="$(STORE_URI)" MLFLOW_DEFAULT_ARTIFACT_ROOT="$(CURDIR)/mlruns/artifacts"' \
	  'fi' >> $(BIN)/activate
	@touch $@

.PHONY: help setup lock repro test test-fast docs bench lab ui models metrics plots stages check lock-check lint clean serve monitor simulate team-up team-down team-status

$(LAB_OVERRIDES): deploy/jupyterlab/overrides.json | $(STAMP)
	install -D -m 644 $< $@

setup: $(STAMP) $(LAB_OVERRIDES) ## create .venv, install requirements.lock (hashes checked), the project (editable) and its Jupyter kernel, prepare DVC
	@test -d .dvc || dvc init --quiet $$(git rev-parse --git-dir >/dev/null 2>&1 || echo --no-scm)

lock: $(STAMP) ## regenerate requirements.lock from pyproject.toml (uv), install it into .venv, re-pin deploy/requirements.txt
	$(BIN)/$(LOCK_COMMAND)
	@$(MAKE) --no-print-directory $(STAMP)
	$(BIN)/python deploy/lock.py

repro: setup ## run the pipeline on the data named in params.yaml (re-runs only what changed)
	mlcycle pipeline check
	dvc repro
	@echo "open reports/index.html"

test: setup ## run every test: unit, data, model and end-to-end pipeline tests (TEST_WORKERS=2 processes, one test file each)
	pytest $(XDIST) --durations=20 $(PYTEST_ARGS)

test-fast: setup ## quick tests for iteration (skips notebook and pipeline runs)
	pytest -m "not slow" $(XDIST) $(PYTEST_ARGS)

docs: setup ## write the parameters reference into docs/parameters.md, then build the site into build/site/ strictly (a warning or a broken link fails it)
	python docs/hooks/params_reference.py
	NO_MKDOCS_2_WARNING=1 mkdocs build --strict  # not --quiet: it hides the warnings strict mode counts
	@echo "open build/site/index.html"

bench: repro ## benchmarks (bench/bench_*.py) -> reports/benchmarks.md (the serving one needs the champion: runs make repro first); long: BENCH_SCALES=1 for the default size only; bench_drift.py installs Evidently into .venv-evidently on first use
	@set -e; all=(bench/bench_*.py); i=0; for b in "$${all[@]}"; do i=$$((i + 1)); echo "== [$$i/$${#all[@]}] $$b ($$(date +%H:%M:%S))"; python $$b; done
	python bench/report.py

lab: setup ## open JupyterLab on the workspace (localhost only)
	MLFLOW_TRACKING_URI="$${MLFLOW_TRACKING_URI:-$(STORE_URI)}" MLCYCLE_DEFAULT_STORE="$(STORE_URI)" jupyter lab --ip=127.0.0.1 --notebook-dir=$(CURDIR) $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

ui: setup ## MLflow UI on the workspace's tracking store (localhost only), opening on the experiment's runs
	mlflow ui --app-name mlcycle --backend-store-uri $(STORE_URI) --default-artifact-root $(CURDIR)/mlruns/artifacts --host 127.0.0.1 --port $(or $(PORT),5000)

models: setup ## registered model versions with their aliases (mlcycle model list)
	mlcycle model list

metrics: setup ## show the pipeline's metrics, one line each (dvc metrics show --json, narrowed)
	set -o pipefail; dvc metrics show --json | python -m mlcycle.stages.show

plots: setup ## render the pipeline's plots to dvc_plots/index.html (dvc plots show)
	dvc plots show

stages: setup ## list stages with their notebook, code and tests
	mlcycle pipeline stages

check: setup ## check params.yaml without running anything
	mlcycle pipeline check

lint: setup ## ruff on src, tests and notebooks
	ruff check src tests bench notebooks

# what `make clean` may remove: only files git ignores (pipeline outputs DVC caches, operations' reports)
# under these folders; committed results (metrics, plots, .gitignore files) and your own untracked
# files stay; the model cards and benchmark results too (see below)
CLEAN_PATHS := data/interim data/processed models reports dvc_plots
CLEAN_KEEP := ':!reports/cards' ':!reports/benchmarks' ':!reports/benchmarks.md' ':!reports/benchmarks.json'

clean: ## remove untracked pipeline outputs (keeps what git tracks, .venv, the DVC cache, data/raw, mlruns)
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  git clean -fdX --quiet -- $(CLEAN_PATHS) $(CLEAN_KEEP); \
	else echo "make clean: not a git checkout, so what is tracked is unknown; nothing was removed" >&2; exit 1; fi

lock-check: setup ## fail when dvc.lock is stale for a code, notebook or params input (runs no stage; run before committing)
	mlcycle pipeline lock-check

serve: setup ## serve the champion over HTTP on 127.0.0.1 (SERVE_ARGS="--port 8000 --workers 2"; see docs/serving.md)
	mlcycle serving start $(SERVE_ARGS)

monitor: setup ## drift and performance of the champion on the prediction log (MONITOR_ARGS="--from-log --days 1" or "--input FILE")
	mlcycle monitoring run $(or $(MONITOR_ARGS),--from-log)

simulate: setup ## month-by-month replay of the flights data through monitor/retrain/gate -> reports/simulation.html (SIM_ARGS="--periods 3")
	mlcycle monitoring simulate $(SIM_ARGS)

team-up: setup ## start the local team stack (PostgreSQL, S3 endpoint, mlflow server on 127.0.0.1); make repro then records there
	mlcycle team up

team-down: setup ## stop the local team stack (the S3 endpoint keeps objects in memory: they are gone)
	mlcycle team down

team-status: setup ## which services of the local team stack run
	mlcycle team status

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(firstword $(MAKEFILE_LIST)) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'
