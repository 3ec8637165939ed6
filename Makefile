# The two commands of the README: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run dry-run test lint bench bench-runtime bench-events bench-delays clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/braidflow dev

dry-run: install
	$(BIN)/braidflow dry-run examples/new-hire-approval.yaml \
		--input '{"employee": "ada"}' --answers examples/new-hire-approval.answers.yaml

lint: install
	$(BIN)/ruff check braidflow tests bench
	$(BIN)/ruff format --check braidflow tests bench

test: lint
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/engine_bench.py

bench-runtime: install
	$(BIN)/python bench/runtime_bench.py

bench-events: install
	$(BIN)/python bench/event_bench.py

bench-delays: install
	$(BIN)/python bench/delay_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
