# ppl_models — `make demo` runs a catalog model end to end; `make test` runs the suite.
# Both build .venv from nothing when it is missing (Python >= 3.12 is found by itself).

SHELL := /bin/bash
VENV  := .venv
VPY   := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# A Python >= 3.12: PATH first, then pyenv's versions.
PYTHON ?= $(shell bash scripts/find-python.sh)

DEMO_ENTRY ?= breast_cancer_logistic
DEMO_OUT   ?= runs/demo
PYTEST_ARGS ?= -n 2

.PHONY: demo test venv bench clean check-python

check-python:
	@if [ -z "$(PYTHON)" ]; then \
	  echo "error: ppl_models needs Python >= 3.12 (ArviZ 1.x and current JAX require it)."; \
	  echo "       None was found on PATH or under ~/.pyenv/versions. Install one, or run"; \
	  echo "       'make PYTHON=/path/to/python3.12 test'."; exit 1; fi

$(STAMP): pyproject.toml | check-python
	@echo "creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"
	@[ -x $(VPY) ] || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	MPLBACKEND=Agg $(VENV)/bin/ppl-models run $(DEMO_ENTRY) --out $(DEMO_OUT) --no-progress

test: $(STAMP)
	MPLBACKEND=Agg $(VPY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(VPY) -m pip install --quiet -e ".[test,peers]"
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(VPY) $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
