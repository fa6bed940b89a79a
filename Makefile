# Two commands do all set-up on a fresh machine: `make run` and `make test`.
# Both create or update the virtual environment first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint check console staff export bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/prescreen run

console: $(VENV)/.installed
	$(BIN)/prescreen console

# What operators run, without activating the virtual environment:
#   make staff ARGS="add 222333444 'Dr Chen' --role investigator"
#   make export ARGS="transcripts.zip --status eligible"
staff: $(VENV)/.installed
	$(BIN)/prescreen staff $(or $(ARGS),list)

export: $(VENV)/.installed
	$(BIN)/prescreen export $(ARGS)

# One worker per core (pytest-xdist): the suite's slow tests run side by side. The test that
# stops the PostgreSQL server runs alone afterwards, when no other test is using it.
test: $(VENV)/.installed
	$(BIN)/python -m pytest -q -n auto -m "not stops_postgres"
	$(BIN)/python -m pytest -q -m stops_postgres

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(VENV)/.installed
	$(BIN)/python -m bench quick

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
