# `make run` and `make test` set up .venv themselves; nothing else is needed
# beyond Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format protos bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## Run the main job (all three functions, seeded plan) against the built-in emulator.
run: $(STAMP)
	$(BIN)/locust -f locustfiles/mix.py --headless

## Run the whole test suite.
test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Regenerate locust_hyperfaas/proto from protos/*.proto.
protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

## Open-loop accuracy benchmark against the emulator (see benchmarks/README.md).
bench: $(STAMP)
	$(BIN)/python benchmarks/arrival_accuracy.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
