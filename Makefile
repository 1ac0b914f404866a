# Two commands do all the set-up on a fresh machine:
#   make demo   build the environment, then curate the embedded demo pool through Dagster
#   make test   build the environment if needed, then run the test suite
PY ?= python3
VENV := .venv
DVC_VENV := .venv-dvc
CONSTRAINTS := requirements/constraints.txt
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Every pip call, build isolation included, keeps the local CPU torch wheel.
export PIP_CONSTRAINT := $(CURDIR)/$(CONSTRAINTS)
# DeepSpeed installs without prebuilt ops; it JIT-compiles the CPU ones it needs (cached).
export DS_BUILD_OPS := 0
export TORCH_EXTENSIONS_DIR := $(CURDIR)/.cache/torch_extensions

.PHONY: demo test env dvc-env repro ui bench check-params clean browser dagster-home

demo: env dagster-home
	$(VENV)/bin/reactid demo

# REACTID_REQUIRE_BROWSER: the UI test fails instead of skipping when chromium is missing.
test: env dvc-env browser
	REACTID_REQUIRE_BROWSER=1 $(VENV)/bin/python -m pytest -q

env: $(VENV)/.installed
dvc-env: $(DVC_VENV)/.installed

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e '.[dev]'
	$(VENV)/bin/pip check
	touch $@

$(DVC_VENV)/.installed: requirements/dvc.txt
	test -x $(DVC_VENV)/bin/python || $(PY) -m venv $(DVC_VENV)
	PIP_CONSTRAINT= $(DVC_VENV)/bin/pip install -q -r requirements/dvc.txt
	touch $@

# dvc runs from its own environment; tools/dvc puts the project's CLI on its PATH.
repro: env dvc-env
	tools/dvc repro

ui: env dagster-home
	$(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

# $(DAGSTER_HOME)/dagster.yaml from orchestration/dagster.yaml + params (run retries, run queue,
# gpu pool limit; SQLite storage). Rewritten when params change, kept when edited by hand.
dagster-home: env
	$(VENV)/bin/reactid dagster-home

# The UI test (tests/ui) drives Debian's chromium through playwright (no `playwright install`).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser: $(CHROMIUM)
$(CHROMIUM):
	$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium

# Each benchmark prints one JSON object (ratios against a baseline measured in the same run);
# copies land in bench/results/. BENCHES=storage runs one.
BENCHES ?= curation curriculum training storage memory dedup
bench: env
	mkdir -p bench/results
	set -e; for b in $(BENCHES); do \
	  $(VENV)/bin/python bench/$$b.py > bench/results/$$b.json; cat bench/results/$$b.json; done

check-params: env
	$(VENV)/bin/reactid check-params

clean:
	rm -rf data .dagster_home
