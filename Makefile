# Two commands from a fresh clone: `make demo` and `make test` (what CI runs).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo test setup lint unit bench docs release clean

demo: $(VENV)/.runtime
	$(BIN)/kubectl-gpuscale top --demo

$(VENV)/.runtime: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e .
	@touch $@

setup:
	./scripts/setup-test-env.sh

lint: setup
	$(BIN)/ruff check kubectl_gpuscale tests benchmarks scripts
	$(BIN)/ruff format --check kubectl_gpuscale tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: setup
	$(BIN)/python -m pytest -q

test: setup
	$(BIN)/ruff check kubectl_gpuscale tests benchmarks scripts
	$(BIN)/ruff format --check kubectl_gpuscale tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	@if [ "$$CI" = "true" ]; then $(MAKE) --no-print-directory release; fi
	$(BIN)/python -m pytest -q

# The krew archive (PyInstaller, ~2 min) and the manifest rendered from it; CI builds it so that
# tests/test_ship_archive.py smoke-tests the real archive through kubectl.
release: setup
	$(BIN)/python scripts/build_release.py all

bench: setup
	$(BIN)/python benchmarks/run.py

docs: setup
	$(BIN)/mkdocs build --strict --clean --site-dir site

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
