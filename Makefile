# perflink — run `make help` for the list of targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.perflink-installed
PARAMS ?= params/2026Q3.yaml
SAMPLE := data/sample

.DEFAULT_GOAL := help
.PHONY: help install review sample lab test test-fast lint format bench docs clean

help: ## list every target
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name perflink --display-name "Python (perflink)" >/dev/null
	@touch $(STAMP)

install: $(STAMP) ## create .venv (if absent), install perflink and its dependencies, register the Jupyter kernel

$(SAMPLE)/params.yaml: $(STAMP) perflink/sample.py $(wildcard perflink/_sample_*.py) $(wildcard perflink/data/catalog/*.yaml)
	$(BIN)/perflink sample-data $(SAMPLE)

sample: $(SAMPLE)/params.yaml ## generate the bundled sample group into data/sample/

review: $(SAMPLE)/params.yaml ## set up everything and run the quarterly review on the sample group (reports/2026Q3/)
	$(BIN)/perflink review --params $(PARAMS)

lab: $(STAMP) ## open JupyterLab on the project
	$(BIN)/jupyter lab --notebook-dir=.

test: $(SAMPLE)/params.yaml ## run the whole test suite (unit, notebooks, browser)
	$(BIN)/python -m pytest tests
	$(BIN)/python -m pytest --nbval-lax notebooks -p no:cacheprovider

test-fast: $(STAMP) ## unit tests only (no notebooks, no browser)
	$(BIN)/python -m pytest tests -m "not browser and not slow"

lint: $(STAMP) ## ruff format check and lint; import-linter checks the layers (no circles)
	$(BIN)/ruff format --check perflink tests benchmarks
	$(BIN)/ruff check perflink tests benchmarks
	$(BIN)/lint-imports --no-cache

format: $(STAMP) ## apply ruff formatting and safe fixes
	$(BIN)/ruff format perflink tests benchmarks
	$(BIN)/ruff check --fix perflink tests benchmarks

bench: $(STAMP) ## run the benchmark scripts and print their figures
	@for b in benchmarks/*_bench.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

docs: $(STAMP) ## regenerate docs/params-reference.md and docs/catalog-reference.md from the models
	$(BIN)/python -m perflink.docs docs

clean: ## remove the virtual environment, generated sample and caches (reports/ is kept)
	rm -rf $(VENV) $(SAMPLE) .pytest_cache .ruff_cache .hypothesis
